package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prescripto/prescripto/projections"
)

// The operators' projection commands ask the server that runs the embedded
// default on the data dir, through its admin socket (see adminsock.go):
// the in-memory read models live in that process. With the production
// wiring (ESDB_URL, MONGODB_URI) use GET /api/v1/admin/projections and
// POST /api/v1/admin/projections/{name}/rebuild as an admin.

// projectionList is what the admin socket answers about projections.
type projectionList struct {
	Head        uint64               `json:"head"`
	Projections []projections.Status `json:"projections"`
}

// adminClient reaches the admin socket of dataDir.
func adminClient(dataDir string) (*http.Client, string) {
	path := filepath.Join(dataDir, adminSocketName)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}, path
}

func askProjections(ctx context.Context, dataDir string) (projectionList, error) {
	c, path := adminClient(dataDir)
	status, b, err := adminCall(ctx, c, http.MethodGet, "/projections", nil, 1<<20)
	if err != nil {
		return projectionList{}, fmt.Errorf("no server answers on %s (%w): the projections live in the `serve` process of the data dir %s; with ESDB_URL and MONGODB_URI ask GET /api/v1/admin/projections", path, err, dataDir)
	}
	if status != http.StatusOK {
		return projectionList{}, errors.New(strings.TrimSpace(string(b)))
	}
	var out projectionList
	if err := json.Unmarshal(b, &out); err != nil {
		return projectionList{}, fmt.Errorf("admin socket answered %q: %w", b, err)
	}
	return out, nil
}

// projectionsList prints every projection's position, lag and status.
func projectionsList(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("projections list", stdout, stderr)
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory of the running server")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	l, err := askProjections(context.Background(), cfg.DataDir)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPOSITION\tLAG\tSTATUS\tLAST REBUILD\tERROR")
	for _, p := range l.Projections {
		rate := "-"
		if p.RebuildRate > 0 {
			rate = fmt.Sprintf("%.0f events/s", p.RebuildRate)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", p.Name, p.Position, p.Lag, p.Status, rate, p.Error)
	}
	return tw.Flush()
}

// projectionsRebuild starts a rebuild and follows it until it is swapped
// in: a progress bar on a terminal, a line every few seconds otherwise.
func projectionsRebuild(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("projections rebuild", stdout, stderr)
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory of the running server")
	detach := fs.Bool("detach", false, "start the rebuild and return at once")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if name == "" {
		return errors.New("projections rebuild: name the projection (see `prescripto projections list`)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, path := adminClient(cfg.DataDir)
	status, b, err := adminCall(ctx, c, http.MethodPost, "/projections/"+name+"/rebuild", nil, 64<<10)
	if err != nil {
		return fmt.Errorf("no server answers on %s (%w): the projections live in the `serve` process of the data dir %s", path, err, cfg.DataDir)
	}
	if status != http.StatusAccepted {
		return fmt.Errorf("projections rebuild %s: %s", name, strings.TrimSpace(string(b)))
	}
	fmt.Fprintf(stdout, "rebuilding %s\n", name)
	if *detach {
		return nil
	}
	return followRebuild(ctx, cfg.DataDir, name, stdout, isTerminal(stdout))
}

// followRebuild polls the projection's status until its rebuild is done.
func followRebuild(ctx context.Context, dataDir, name string, out io.Writer, tty bool) error {
	every, lineEvery := 200*time.Millisecond, 2*time.Second
	var lastLine time.Time
	seen := false // the rebuild was seen running
	for {
		l, err := askProjections(ctx, dataDir)
		if err != nil {
			return err
		}
		var st *projections.Status
		for i := range l.Projections {
			if l.Projections[i].Name == name {
				st = &l.Projections[i]
			}
		}
		if st == nil {
			return fmt.Errorf("projections rebuild: no projection %q", name)
		}
		switch {
		case st.Status == "failed":
			if tty {
				fmt.Fprintln(out)
			}
			return fmt.Errorf("projections rebuild %s failed: %s", name, st.Error)
		case st.Status == "rebuilding" || st.Rebuilt > 0:
			seen = true
			line := progressLine(st.Rebuilt, l.Head, st.RebuildRate, tty)
			if tty {
				fmt.Fprint(out, "\r"+line)
			} else if time.Since(lastLine) >= lineEvery {
				fmt.Fprintln(out, line)
				lastLine = time.Now()
			}
		case seen || st.RebuildRate > 0:
			if tty {
				fmt.Fprint(out, "\r"+progressLine(l.Head, l.Head, st.RebuildRate, true)+"\n")
			}
			fmt.Fprintf(out, "%s rebuilt and swapped in (%.0f events/s)\n", name, st.RebuildRate)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// progressLine is "[#####     ] 45% 45,000/100,000 12,345 events/s ETA 4s".
func progressLine(done, total uint64, rate float64, bar bool) string {
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	eta := "-"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	s := fmt.Sprintf("%3.0f%% %d/%d %.0f events/s ETA %s", frac*100, done, total, rate, eta)
	if !bar {
		return s
	}
	const width = 30
	n := int(frac * width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(" ", width-n) + "] " + s
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
