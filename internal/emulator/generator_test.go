package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const (
	genEnv  = "bf0c6a52-7c3e-4c9f-9d1e-2f5a8e3b6c71"
	genBase = "http://127.0.0.1:9001"
)

func TestGeneratorDeterministic(t *testing.T) {
	gen := func(seed uint64) []Activity {
		g := NewGenerator(seed)
		var out []Activity
		for i := range 200 {
			env := genEnv
			if i%3 == 0 {
				env = "other-env"
			}
			out = append(out, g.Activity(env, genBase, t0.Add(time.Duration(i)*time.Second)))
		}
		return out
	}
	a, b, c := gen(42), gen(42), gen(43)
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].JSON, b[i].JSON) || !a[i].RecordedAt.Equal(b[i].RecordedAt) {
			t.Fatalf("activity %d differs between two generators seeded 42", i)
		}
	}
	same := 0
	for i := range a {
		if a[i].ID == c[i].ID {
			same++
		}
	}
	if same != 0 {
		t.Errorf("seeds 42 and 43 share %d activity ids", same)
	}
}

// generated is the decoded shape of a generated activity.
type generated struct {
	Links struct {
		Self struct{ Href string } `json:"self"`
	} `json:"_links"`
	ID                  string    `json:"id"`
	RecordedAt          time.Time `json:"recordedAt"`
	CreatedAt           time.Time `json:"createdAt"`
	CorrelationID       string    `json:"correlationId"`
	InternalCorrelation *struct {
		SessionID string `json:"sessionId"`
	} `json:"internalCorrelation"`
	Actors *struct {
		Client *genActor `json:"client"`
		User   *genActor `json:"user"`
	} `json:"actors"`
	Source *struct {
		IPAddress string `json:"ipAddress"`
		UserAgent string `json:"userAgent"`
	} `json:"source"`
	Action struct {
		Type        string `json:"type"`
		Description string `json:"description"`
	} `json:"action"`
	Resources []struct {
		Type, ID, Name, Href string
		Environment          struct{ ID string }
	} `json:"resources"`
	Result struct {
		Status      string `json:"status"`
		Description string `json:"description"`
		ID          string `json:"id"`
	} `json:"result"`
	Tags []string `json:"tags"`
}

type genActor struct {
	ID, Name, Type, Href string
	Environment          *struct{ ID string }
	Population           *struct{ ID string }
}

func TestGeneratedActivities(t *testing.T) {
	g := NewGenerator(1)
	const n = 2000
	types := map[string]int{}
	var sizes []int
	var noActors, emptyPopulation, tagged, sessions, failed int
	for i := range n {
		at := t0.Add(time.Duration(i)*time.Second + 123456*time.Nanosecond)
		a := g.Activity(genEnv, genBase, at)
		var v generated
		if err := json.Unmarshal(a.JSON, &v); err != nil {
			t.Fatalf("activity %d: %v: %s", i, err, a.JSON)
		}
		sizes = append(sizes, len(a.JSON))
		types[v.Action.Type]++
		wantAt := at.Truncate(time.Millisecond)
		switch {
		case v.ID != a.ID || !uuidRE.MatchString(v.ID) || !uuidRE.MatchString(v.CorrelationID):
			t.Fatalf("ids %q %q (Activity.ID %q): want matching UUIDs", v.ID, v.CorrelationID, a.ID)
		case !a.RecordedAt.Equal(wantAt) || !v.RecordedAt.Equal(wantAt) || !a.VisibleAt.Equal(wantAt) || a.RecordedAt.Location() != time.UTC:
			t.Fatalf("recordedAt %v / %v, VisibleAt %v: want %v in UTC", a.RecordedAt, v.RecordedAt, a.VisibleAt, wantAt)
		case !bytes.Contains(a.JSON, []byte(`"recordedAt":"`+wantAt.Format(timeFormat)+`"`)):
			t.Fatalf("recordedAt not written as %s: %s", wantAt.Format(timeFormat), a.JSON)
		case v.CreatedAt.Sub(v.RecordedAt) < 5*time.Millisecond || v.CreatedAt.Sub(v.RecordedAt) > 300*time.Millisecond:
			t.Fatalf("createdAt %v is not 5–300ms after recordedAt %v", v.CreatedAt, v.RecordedAt)
		case v.Links.Self.Href != genBase+"/v1/environments/"+genEnv+"/activities/"+v.ID:
			t.Fatalf("self href %s", v.Links.Self.Href)
		case v.Action.Type == "" || v.Action.Description == "" || v.Result.Description == "" || len(v.Resources) == 0:
			t.Fatalf("incomplete activity %s", a.JSON)
		case v.Result.Status != "SUCCESS" && v.Result.Status != "FAILED":
			t.Fatalf("result status %q", v.Result.Status)
		}
		for _, r := range v.Resources {
			if r.Type == "" || r.ID == "" || r.Environment.ID != genEnv || !strings.HasPrefix(r.Href, genBase+"/v1/environments/"+genEnv+"/") {
				t.Fatalf("resource %+v", r)
			}
		}
		if v.Result.Status == "FAILED" {
			failed++
			if !uuidRE.MatchString(v.Result.ID) {
				t.Errorf("failed result without id: %s", a.JSON)
			}
		}
		signOn := strings.HasPrefix(v.Action.Type, "USER.ACCESS_")
		if signOn != (v.Source != nil) || (v.Source != nil && (v.Source.IPAddress == "" || v.Source.UserAgent == "")) {
			t.Errorf("%s: source %+v, want one exactly on sign-ons", v.Action.Type, v.Source)
		}
		if v.InternalCorrelation != nil {
			sessions++
		}
		if len(v.Tags) > 0 {
			tagged++
			if !slices.Equal(v.Tags, []string{"adminIdentityEvent"}) {
				t.Errorf("tags %q", v.Tags)
			}
		}
		if v.Actors == nil {
			noActors++
			if v.Action.Type != "ACTION.CREATED" {
				t.Errorf("%s without actors", v.Action.Type)
			}
			continue
		}
		if v.Action.Type == "ACTION.CREATED" {
			t.Errorf("ACTION.CREATED with actors")
		}
		c := v.Actors.Client
		if c == nil || c.Type != "CLIENT" || c.ID == "" || c.Name == "" {
			t.Fatalf("client actor %+v", c)
		}
		if u := v.Actors.User; u != nil {
			if u.Type != "USER" || !uuidRE.MatchString(u.ID) || !strings.Contains(u.Name, "@example.") ||
				u.Environment == nil || u.Environment.ID != genEnv || u.Population == nil || u.Href != genBase+"/v1/environments/"+genEnv+"/users/"+u.ID {
				t.Fatalf("user actor %+v", u)
			}
			if u.Population.ID == "" {
				emptyPopulation++
			}
		} else if signOn {
			t.Errorf("sign-on without a user actor")
		}
	}
	for _, k := range eventKinds {
		if types[k.typ] == 0 {
			t.Errorf("no %s in %d activities", k.typ, n)
		}
	}
	if types["USER.ACCESS_ALLOWED"] < n/3 {
		t.Errorf("%d USER.ACCESS_ALLOWED of %d: want sign-ons to dominate", types["USER.ACCESS_ALLOWED"], n)
	}
	for name, count := range map[string]int{"without actors": noActors, "with population {}": emptyPopulation, "tagged": tagged, "with a session": sessions, "failed": failed} {
		if count == 0 {
			t.Errorf("no activity %s", name)
		}
	}
	slices.Sort(sizes)
	p5, median, p95 := sizes[n*5/100], sizes[n/2], sizes[n*95/100]
	t.Logf("sizes: min %d, p5 %d, median %d, p95 %d, max %d", sizes[0], p5, median, p95, sizes[n-1])
	// Sign-ons, the bulk, carry two actors, a source and a resource, each
	// with the environment id and an href: about 1.6 KB with UUID ids.
	if sizes[0] < 700 || median < 900 || median > 1700 || sizes[n-1] > 2048 {
		t.Errorf("sizes min %d, median %d, max %d: want 0.7–2 KB, median at most 1.7 KB", sizes[0], median, sizes[n-1])
	}
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	g := NewGenerator(9)
	for i := range 600 {
		env, base := genEnv, genBase
		if i%10 == 0 {
			env, base = `we"ird<&>\env`, "https://api.example.com/é/"
		}
		a := g.Activity(env, base, t0.Add(time.Duration(i)*time.Minute))
		var v activityJSON
		if err := json.Unmarshal(a.JSON, &v); err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.appendJSON(nil); !bytes.Equal(got, want) || !bytes.Equal(a.JSON, want) {
			t.Fatalf("activity %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestBacklog(t *testing.T) {
	clk := newFakeClock(t0)
	p := NewPingOne(PingOneOptions{Now: clk.Now})
	from, to := t0.Add(-time.Hour+time.Microsecond), t0.Add(-time.Minute)
	p.Backlog(NewGenerator(3), genEnv, genBase, 2000, from, to)
	acts := p.Activities(genEnv)
	if len(acts) != 2000 {
		t.Fatalf("%d activities, want 2000", len(acts))
	}
	for i, a := range acts {
		if a.RecordedAt.Before(from) || !a.RecordedAt.Before(to) || a.VisibleAt.After(t0) {
			t.Fatalf("activity %d recorded %v visible %v: want in [%v, %v) and visible now", i, a.RecordedAt, a.VisibleAt, from, to)
		}
	}
	// Spread over the window, not clumped.
	if first, last := acts[0].RecordedAt, acts[len(acts)-1].RecordedAt; first.Sub(from) > time.Minute || to.Sub(last) > time.Minute {
		t.Errorf("backlog spans %v–%v of %v–%v", first, last, from, to)
	}
	// A window reaching into the future is visible now too.
	p.Backlog(NewGenerator(4), "env-future", genBase, 10, t0, t0.Add(time.Hour))
	future := p.Activities("env-future")
	if len(future) != 10 {
		t.Fatalf("%d activities in a window reaching into the future, want 10", len(future))
	}
	for _, a := range future {
		if a.VisibleAt.After(t0) {
			t.Errorf("VisibleAt %v after now %v", a.VisibleAt, t0)
		}
	}
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPingOne(PingOneOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan struct{})
		go func() {
			p.Run(ctx, NewGenerator(5), genEnv, genBase, 20, 30*time.Second)
			close(done)
		}()
		time.Sleep(100 * time.Second)
		cancel()
		<-done
		acts := p.Activities(genEnv)
		// About 20/s for 100 s, plus bursts.
		if len(acts) < 1600 || len(acts) > 3000 {
			t.Errorf("%d activities in 100s at 20/s", len(acts))
		}
		perMs := map[int64]int{}
		var lagged int
		for _, a := range acts {
			lag := a.VisibleAt.Sub(a.RecordedAt)
			if a.RecordedAt.Before(start) || a.RecordedAt.After(start.Add(100*time.Second)) || lag < 0 || lag > 30*time.Second {
				t.Fatalf("recorded %v (start %v), lag %v", a.RecordedAt, start, lag)
			}
			if lag > time.Second {
				lagged++
			}
			perMs[a.RecordedAt.UnixMilli()]++
		}
		if lagged < len(acts)/2 {
			t.Errorf("%d of %d activities lag over 1s: want lags spread over [0, 30s]", lagged, len(acts))
		}
		burst := 0
		for _, n := range perMs {
			burst = max(burst, n)
		}
		if burst < 5 {
			t.Errorf("largest same-millisecond group is %d: want bursts", burst)
		}
	})
}

func TestStartDemo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPingOne(PingOneOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		o := DemoOptions{Environments: 3, Backlog: 24 * time.Hour, BacklogPerEnv: 500, Rate: 2, MaxLag: 10 * time.Second, Seed: 11}
		envs := p.StartDemo(ctx, genBase, o)
		again := NewPingOne(PingOneOptions{}).StartDemo(t.Context(), genBase, DemoOptions{Environments: 3, Seed: 11})
		if len(envs) != 3 {
			t.Fatalf("%d environments", len(envs))
		}
		for i, e := range envs {
			want := Environment{ID: e.ID, Licence: "demo", ClientID: "demo-client-" + string(rune('1'+i)), ClientSecret: "demo-secret-" + string(rune('1'+i)), AuthMethod: AuthMethodBasic}
			if e != want || !uuidRE.MatchString(e.ID) || again[i].ID != e.ID {
				t.Errorf("environment %d = %+v, want %+v with a UUID fixed by the seed", i, e, want)
			}
			if n := len(p.Activities(e.ID)); n != 500 {
				t.Errorf("%s: %d activities, want the 500 of the backlog", e.ID, n)
			}
			tok := issueToken(t, p, e)
			rec := serve(p, "GET", "/v1/environments/"+e.ID+"/activities?limit=10&filter="+url.QueryEscape(window(time.Now().Add(-25*time.Hour), time.Now())), tok, "")
			if rec.Code != http.StatusOK {
				t.Errorf("%s: HTTP %d: %s", e.ID, rec.Code, rec.Body)
			}
		}
		time.Sleep(time.Minute)
		cancel()
		p.Wait()
		for _, e := range envs {
			if n := len(p.Activities(e.ID)); n < 560 {
				t.Errorf("%s: %d activities after a minute at 2/s", e.ID, n)
			}
		}
	})
}
