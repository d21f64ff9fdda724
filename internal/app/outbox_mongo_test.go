package app_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// idCounter counts the sends of each message id.
type idCounter struct {
	mu   sync.Mutex
	sent map[string]int
}

func (c *idCounter) Send(_ context.Context, m notify.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[m.ID]++
	return nil
}

func (c *idCounter) count(prefix string) (distinct, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range c.sent {
		if strings.HasPrefix(id, prefix) {
			distinct++
			total += n
		}
	}
	return distinct, total
}

// On the production wiring the outbox is in MongoDB and every worker
// process delivers from it: two worker processes send each of 100 mails
// put into the outbox exactly once (no standby, the leases).
func TestMongoOutboxTwoWorkerProcesses(t *testing.T) {
	t.Parallel()
	mailer := &idCounter{sent: map[string]int{}}
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true, Mailer: mailer})
	e.StartWorkerReplica(t)

	uri := e.Options().MongoURI
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx := context.Background()
	box, err := notify.NewMongoOutbox(ctx, client.Database(strings.TrimPrefix(u.Path, "/")))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // due on any clock
	var mails []notify.Mail
	for i := range n {
		mails = append(mails, notify.Mail{Message: notify.Message{ID: fmt.Sprintf("twoproc-%03d", i),
			To: fmt.Sprintf("p%d@example.com", i), Subject: "s", Body: "b", Date: at},
			Kind: "test", NextAt: at, CreatedAt: at})
	}
	if err := box.Add(ctx, mails...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d, _ := mailer.count("twoproc-"); d == n {
			break
		}
		if time.Now().After(deadline) {
			d, total := mailer.count("twoproc-")
			t.Fatalf("%d of %d mails sent (%d sends)", d, n, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second send would come now
	if d, total := mailer.count("twoproc-"); d != n || total != n {
		t.Fatalf("%d mails, %d sends; want %d each", d, total, n)
	}
	for _, m := range mails {
		got, err := box.Get(ctx, m.ID)
		if err != nil || got.Status != notify.StatusSent {
			t.Fatalf("%s: %v, %v", m.ID, got.Status, err)
		}
	}
}
