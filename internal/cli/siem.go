package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink/elasticsearch"
	"github.com/auditrelay/auditrelay/internal/sink/splunk"
)

// demoSIEMs are the demo's emulated Splunk HEC and Elasticsearch cluster,
// each fed by every source.
type demoSIEMs struct {
	hec           *emulator.Splunk
	es            *emulator.Elasticsearch
	hecURL, esURL string
	hecSrv, esSrv *http.Server
}

// startDemoSIEMs serves a Splunk HEC emulator (indexer acknowledgment,
// ackIds true after 200 ms) and an Elasticsearch emulator on loopback,
// and adds a splunk and an elasticsearch sink taking every source to cfg.
func startDemoSIEMs(cfg *config.Config) (*demoSIEMs, error) {
	d := &demoSIEMs{
		hec: emulator.NewSplunk(emulator.SplunkOptions{AckDelay: 200 * time.Millisecond}, emulator.SplunkToken{Token: demoSplunkToken, Ack: true}),
		es:  emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{demoElasticsearchAPIKey}}),
	}
	serve := func(h http.Handler) (*http.Server, string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		return srv, "http://" + ln.Addr().String(), nil
	}
	var err error
	if d.hecSrv, d.hecURL, err = serve(d.hec); err != nil {
		return nil, err
	}
	if d.esSrv, d.esURL, err = serve(d.es); err != nil {
		d.hecSrv.Close()
		return nil, err
	}
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	hc := &splunk.Config{URL: d.hecURL, Token: secret.New(demoSplunkToken), Index: "identity"}
	hc.SetDefaults()
	ec := &elasticsearch.Config{URLs: []string{d.esURL}, APIKey: secret.New(demoElasticsearchAPIKey)}
	ec.SetDefaults()
	cfg.Sinks = append(cfg.Sinks,
		config.Sink{Name: "splunk", Sources: names, Splunk: hc},
		config.Sink{Name: "elasticsearch", Sources: names, Elasticsearch: ec})
	return d, nil
}

func (d *demoSIEMs) stop() {
	d.hecSrv.Close()
	d.esSrv.Close()
}

// summary reports what the emulated Splunk and Elasticsearch hold, and how
// many events each holds more than once.
func (d *demoSIEMs) summary(w io.Writer) {
	ids := map[string]int{}
	for _, e := range d.hec.Events() {
		ids[e.Source+"/"+e.ID()]++
	}
	fmt.Fprintf(w, "Splunk (emulated) indexed %d events into index identity, %d duplicates, every request acknowledged by the indexer (%d ack polls)\n",
		len(d.hec.Events()), dupCount(ids), d.hec.Stats().AckPolls)
	docs, dups := 0, 0
	counts := d.es.IDCounts()
	var indices []string
	for ix := range counts {
		indices = append(indices, ix)
	}
	sort.Strings(indices)
	for _, ix := range indices {
		for _, n := range counts[ix] {
			docs += n
		}
		dups += dupCount(counts[ix])
	}
	fmt.Fprintf(w, "Elasticsearch (emulated) holds %d documents, %d duplicates (%d resends answered 409), in %v\n",
		docs, dups, d.es.Stats().Conflicts, indices)
}

// dupCount returns how many entries of counts are repeats.
func dupCount(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += max(c-1, 0)
	}
	return n
}
