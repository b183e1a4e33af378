// Package rotate shifts size-rotated files: path becomes path.1, path.1
// becomes path.2, and so on, keeping at most a given number of rotated
// files. The file sink and the park files use it; Files lists what it
// left, for the readers of those files.
package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Due reports whether a file of size bytes must rotate before n more bytes
// are appended to it, for a limit of max bytes. An empty file never
// rotates, so a single write larger than max still goes somewhere.
func Due(size, n, max int64) bool {
	return size > 0 && size+n > max
}

// Shift removes path.keep, renames path.i to path.(i+1) for i from keep-1
// down to 1, then path to path.1, and fsyncs the directory. The caller
// opens a new path afterwards. A rotated file that does not exist is
// skipped; keep must be at least 1.
func Shift(path string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("rotate %s: keep %d files: at least 1", path, keep)
	}
	if err := os.Remove(path + "." + strconv.Itoa(keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(path+"."+strconv.Itoa(i), path+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	if err := os.Rename(path, path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Files returns the files of path that exist, oldest first: path.N down
// to path.1 (as Shift numbers them, from 1 up without a gap), then path.
func Files(path string) []string {
	var rotated []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		rotated = append(rotated, p)
	}
	out := make([]string, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		out = append(out, rotated[i])
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out
}
