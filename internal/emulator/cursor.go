package emulator

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// cursor is the keyset position of a page: the query it belongs to and the
// last activity returned, (recordedAt, id). The next page holds the
// activities strictly older in (recordedAt desc, id desc) order.
type cursor struct {
	Env    string `json:"e"`
	Filter string `json:"f"`
	Limit  int    `json:"l"`
	Ms     int64  `json:"t"`
	ID     string `json:"i"`
}

// encode renders the cursor as a URL-safe token.
func (c cursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("emulator: encode cursor: %v", err)) // cannot happen: plain fields
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a token made by encode.
func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("decode cursor: %w", err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, fmt.Errorf("decode cursor: %w", err)
	}
	if c.Env == "" || c.Filter == "" || c.ID == "" || c.Limit < minLimit || c.Limit > maxLimit {
		return cursor{}, errors.New("decode cursor: incomplete cursor")
	}
	return c, nil
}
