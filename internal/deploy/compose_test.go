package deploy_test

import (
	"bufio"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// root is the repository root, relative to this package.
const root = "../.."

var (
	servers = []string{"kurrentdb", "mongo", "redis"}
	roles   = []string{"api", "projector", "worker"}
)

// testSecret stands in for the JWT_SECRET an operator puts in .env.
const testSecret = "0123456789abcdef0123456789abcdef-test-only"

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// load loads docker-compose.yml as docker compose does, interpolating from
// the given env files and then env (which wins), without the process
// environment.
func load(t *testing.T, envFiles []string, env ...string) (*types.Project, error) {
	t.Helper()
	paths := make([]string, len(envFiles))
	for i, f := range envFiles {
		paths[i] = filepath.Join(root, f)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(paths...),
		cli.WithDotEnv,
		cli.WithEnv(env),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	return opts.LoadProject(ctx)
}

// project is docker-compose.yml loaded with .env.example plus a JWT_SECRET,
// i.e. what an operator gets after `cp .env.example .env` and setting it.
func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, []string{".env.example"}, "JWT_SECRET="+testSecret)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with .env.example: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func envOf(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := s.Environment[name]
	if !ok || v == nil {
		t.Fatalf("service %s: environment %s is not set", s.Name, name)
	}
	return *v
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := project(t)
	got := p.ServiceNames()
	sort.Strings(got)
	want := append(slices.Clone(servers), roles...)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	for _, name := range want {
		s := service(t, p, name)
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("service %s: restart %q, want %q", name, s.Restart, types.RestartPolicyUnlessStopped)
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
			t.Errorf("service %s: no healthcheck", name)
		}
	}
}

func TestComposeRoles(t *testing.T) {
	t.Parallel()
	p := project(t)
	replicas := map[string]int{"api": 2, "projector": 1, "worker": 1}
	for _, name := range roles {
		s := service(t, p, name)
		if !slices.Equal([]string(s.Command), []string{name}) {
			t.Errorf("service %s: command %q, want [%s]", name, s.Command, name)
		}
		if s.Deploy == nil || s.Deploy.Replicas == nil {
			t.Errorf("service %s: deploy.replicas is not set", name)
		} else if *s.Deploy.Replicas != replicas[name] {
			t.Errorf("service %s: %d replicas, want %d", name, *s.Deploy.Replicas, replicas[name])
		}
		if s.Build == nil || s.Build.Context != mustAbs(t, root) || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("service %s: not built from the repository's Dockerfile: %+v", name, s.Build)
		}
		if s.HealthCheck == nil || !slices.Contains([]string(s.HealthCheck.Test), "health") {
			t.Errorf("service %s: healthcheck %v does not run `prescripto health`", name, s.HealthCheck)
		}
		for _, dep := range servers {
			d, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("service %s does not depend on %s", name, dep)
				continue
			}
			if d.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s: depends on %s with condition %q, want %q", name, dep, d.Condition, types.ServiceConditionHealthy)
			}
		}
		if got := envOf(t, s, "PRESCRIPTO_DATA"); got != "/data" {
			t.Errorf("service %s: PRESCRIPTO_DATA = %q, want /data", name, got)
		}
		if got := envOf(t, s, "JWT_SECRET"); got != testSecret {
			t.Errorf("service %s: JWT_SECRET = %q, want the one from .env", name, got)
		}
	}

	// The api replicas each need a host port.
	api := service(t, p, "api")
	var ranged bool
	for _, port := range api.Ports {
		if port.Target != 8080 {
			continue
		}
		lo, hi, ok := strings.Cut(port.Published, "-")
		if !ok {
			continue
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		ranged = err1 == nil && err2 == nil && b-a+1 >= replicas["api"]
	}
	if !ranged {
		t.Errorf("api: ports %+v publish no host port range for %d replicas", api.Ports, replicas["api"])
	}

	// The worker's mail outbox survives the container.
	worker := service(t, p, "worker")
	if !mounts(worker, "/data") {
		t.Errorf("worker: no volume at /data")
	}
}

// TestComposeServerURLs checks that the roles reach the compose servers by
// their service names and ports.
func TestComposeServerURLs(t *testing.T) {
	t.Parallel()
	p := project(t)
	want := map[string]struct{ scheme, host string }{
		"ESDB_URL":    {"esdb", "kurrentdb:2113"},
		"MONGODB_URI": {"mongodb", "mongo:27017"},
		"REDIS_URL":   {"redis", "redis:6379"},
	}
	for _, name := range roles {
		s := service(t, p, name)
		for v, w := range want {
			raw := envOf(t, s, v)
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("service %s: %s=%q: %v", name, v, raw, err)
				continue
			}
			if u.Scheme != w.scheme || u.Host != w.host {
				t.Errorf("service %s: %s=%q, want %s://%s", name, v, raw, w.scheme, w.host)
			}
		}
		if esdb, _ := url.Parse(envOf(t, s, "ESDB_URL")); esdb.Query().Get("tls") != "false" {
			t.Errorf("service %s: ESDB_URL lacks tls=false for the insecure KurrentDB", name)
		}
	}
}

func TestComposeServers(t *testing.T) {
	t.Parallel()
	p := project(t)

	k := service(t, p, "kurrentdb")
	for v, want := range map[string]string{
		"KURRENTDB_INSECURE":        "true",
		"KURRENTDB_RUN_PROJECTIONS": "None",
		"KURRENTDB_MEM_DB":          "false",
	} {
		if got := envOf(t, k, v); !strings.EqualFold(got, want) {
			t.Errorf("kurrentdb: %s=%q, want %q", v, got, want)
		}
	}
	if !mounts(k, "/var/lib/kurrentdb") {
		t.Error("kurrentdb: no volume for its database")
	}
	var published bool
	for _, port := range k.Ports {
		published = published || port.Target == 2113 && port.Published == "2113"
	}
	if !published {
		t.Errorf("kurrentdb: port 2113 not published on the host for the conformance suite: %+v", k.Ports)
	}
	if !strings.Contains(strings.Join(k.HealthCheck.Test, " "), "/health/live") {
		t.Errorf("kurrentdb: healthcheck %v does not ask /health/live", k.HealthCheck.Test)
	}

	m := service(t, p, "mongo")
	if !mounts(m, "/data/db") {
		t.Error("mongo: no volume at /data/db")
	}
	if hc := strings.Join(m.HealthCheck.Test, " "); !strings.Contains(hc, "mongosh") || !strings.Contains(hc, "ping") {
		t.Errorf("mongo: healthcheck %q is not a mongosh ping", hc)
	}

	r := service(t, p, "redis")
	if !mounts(r, "/data") {
		t.Error("redis: no volume at /data")
	}
	if cmd := strings.Join(r.Command, " "); !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis: command %q does not turn on AOF persistence", cmd)
	}
	if hc := strings.Join(r.HealthCheck.Test, " "); !strings.Contains(hc, "redis-cli ping") {
		t.Errorf("redis: healthcheck %q is not redis-cli ping", hc)
	}
}

// TestComposeImagesPinned refuses images without a tag or with latest.
func TestComposeImagesPinned(t *testing.T) {
	t.Parallel()
	p := project(t)
	for _, name := range p.ServiceNames() {
		s := service(t, p, name)
		image := s.Image
		if image == "" {
			t.Errorf("service %s: no image (a built image would be tagged latest)", name)
			continue
		}
		if _, _, digest := strings.Cut(image, "@"); digest {
			continue
		}
		// The tag follows the last colon after the last slash (a registry
		// host may carry a port).
		last := image[strings.LastIndex(image, "/")+1:]
		_, tag, ok := strings.Cut(last, ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("service %s: image %q is not pinned to a tag", name, image)
		}
	}
}

// TestComposeRequiresJWTSecret checks that compose refuses to start without
// JWT_SECRET, naming it, both with .env.example unedited and with no env
// file at all.
func TestComposeRequiresJWTSecret(t *testing.T) {
	t.Parallel()
	for name, files := range map[string][]string{
		"unedited .env.example": {".env.example"},
		"no env file":           nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, files)
			if err == nil {
				t.Fatal("docker-compose.yml loads without JWT_SECRET")
			}
			if !strings.Contains(err.Error(), "JWT_SECRET") {
				t.Fatalf("the error does not name JWT_SECRET: %v", err)
			}
		})
	}
}

var interpolated = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// TestEnvExampleMatchesCompose checks that every variable docker-compose.yml
// interpolates is in .env.example, and that every variable there is used
// (a variable set in .env that compose does not pass on would be ignored
// without a word).
func TestEnvExampleMatchesCompose(t *testing.T) {
	t.Parallel()
	compose := read(t, "docker-compose.yml")
	used := map[string]bool{}
	for _, m := range interpolated.FindAllStringSubmatchIndex(compose, -1) {
		if m[0] > 0 && compose[m[0]-1] == '$' { // $${X} is a literal
			continue
		}
		used[compose[m[2]:m[3]]] = true
	}
	if len(used) == 0 {
		t.Fatal("docker-compose.yml interpolates no variables")
	}
	example := envExample(t)
	for v := range used {
		if _, ok := example[v]; !ok {
			t.Errorf("docker-compose.yml interpolates ${%s}, which .env.example does not list", v)
		}
	}
	for v := range example {
		if !used[v] {
			t.Errorf(".env.example lists %s, which docker-compose.yml does not use", v)
		}
	}
}

// envExample returns the variables .env.example assigns.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(read(t, ".env.example")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not NAME=value", line)
			continue
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars
}

// readsEnv matches the variables the binary reads: os.Getenv("X"),
// os.LookupEnv("X"), env("X", ...), envInt("X", ...) and the like.
var readsEnv = regexp.MustCompile(`\b(?:Getenv|LookupEnv|env[A-Za-z]*)\("([A-Z][A-Z0-9_]*)"`)

// TestBinaryEnvDocumented checks that every variable cmd/prescripto reads is
// in .env.example or in docs/deploy.md, so the files cannot drift from the
// binary.
func TestBinaryEnvDocumented(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(root, "cmd", "prescripto", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range readsEnv.FindAllStringSubmatch(string(b), -1) {
			reads[m[1]] = true
		}
	}
	for _, v := range []string{"JWT_SECRET", "ESDB_URL", "MONGODB_URI", "REDIS_URL", "PRESCRIPTO_ADDR"} {
		if !reads[v] {
			t.Fatalf("found no read of %s in cmd/prescripto: the pattern %s no longer matches how the binary reads its environment", v, readsEnv)
		}
	}
	example := envExample(t)
	doc := read(t, "docs/deploy.md")
	for v := range reads {
		if _, ok := example[v]; ok {
			continue
		}
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("cmd/prescripto reads %s; neither .env.example nor docs/deploy.md documents it", v)
		}
	}
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	var froms, users []string
	var lines []string
	for _, l := range instructions(read(t, "Dockerfile")) {
		lines = append(lines, l)
		op, arg, _ := strings.Cut(l, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			froms = append(froms, arg)
			users = nil // USER applies to its stage
		case "USER":
			users = append(users, strings.TrimSpace(arg))
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(froms))
	}
	final := strings.Fields(froms[len(froms)-1])[0]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage is %q, want distroless static or scratch", final)
	}
	if len(users) == 0 {
		t.Fatal("the final stage sets no USER")
	}
	user, _, _ := strings.Cut(users[len(users)-1], ":")
	if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
		t.Errorf("final USER %q is not a numeric non-root user", users[len(users)-1])
	}
	has := func(op, substr string) bool {
		for _, l := range lines {
			o, arg, _ := strings.Cut(l, " ")
			if strings.EqualFold(o, op) && strings.Contains(arg, substr) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ op, substr, why string }{
		{"RUN", "go mod download", "modules are downloaded in a layer of their own"},
		{"RUN", "CGO_ENABLED=0", "the binary is static"},
		{"RUN", "./cmd/prescripto", "it builds the prescripto binary"},
		{"HEALTHCHECK", "health", "the healthcheck runs `prescripto health`"},
		{"ENTRYPOINT", `["/prescripto"]`, "the entrypoint is the binary"},
		{"CMD", `["serve"]`, "the default role is serve"},
		{"EXPOSE", "8080", "it exposes 8080"},
		{"ENV", "PRESCRIPTO_DATA=/data", "the data directory is /data"},
		{"RUN", "chmod 0700 /out/data", "the data directory is private to its owner (issue 11 item 8)"},
	} {
		if !has(c.op, c.substr) {
			t.Errorf("Dockerfile: no %s with %q: want %s", c.op, c.substr, c.why)
		}
	}
	if !has("COPY", "--chown=65532:65532") {
		t.Error("Dockerfile: /data is not owned by the non-root user")
	}

	ignore := strings.Fields(read(t, ".dockerignore"))
	for _, want := range []string{".git", "data/", "**/*.test", "bench/", "profiles/"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// instructions returns the Dockerfile's instructions, continuation lines
// joined and comments dropped.
func instructions(dockerfile string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(dockerfile, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(strings.TrimSpace(more) + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	return out
}

// TestComposeHeader checks that the one-line commands at the top of
// docker-compose.yml are there and match the esdb tests' variable.
func TestComposeHeader(t *testing.T) {
	t.Parallel()
	compose := read(t, "docker-compose.yml")
	for _, want := range []string{
		"docker compose up -d --build",
		"docker compose up -d kurrentdb && ESDB_URL='esdb://localhost:2113?tls=false' go test -race -count=1 -run TestConformanceRealServer ./eventstore/esdb/",
	} {
		if !strings.Contains(compose, want) {
			t.Errorf("docker-compose.yml does not mention %q", want)
		}
	}
	if !strings.Contains(read(t, "eventstore/esdb/esdb_test.go"), `os.Getenv("ESDB_URL")`) {
		t.Error("eventstore/esdb tests no longer read ESDB_URL: fix the command at the top of docker-compose.yml")
	}
}

func mounts(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Target == target && v.Type == types.VolumeTypeVolume {
			return true
		}
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
