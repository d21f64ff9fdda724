package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/prescripto/prescripto/domain"
)

// DefaultDatabase is the read models' database when the URI names none.
const DefaultDatabase = "prescripto"

// Conn is an open connection to the database of the read models.
type Conn struct {
	client *mongo.Client
	db     *mongo.Database
	log    zerolog.Logger
}

// Connect connects to uri (mongodb:// or mongodb+srv://) and checks within
// ctx that the server answers: a server that does not is an error naming
// its hosts. The database is the one the URI's path names, DefaultDatabase
// when it names none.
//
// A request must not hang on a server that is gone: after 2 s without a
// server to talk to, an operation fails as unavailable (503 for a read; the
// projector retries the event in place). A URI that sets
// serverSelectionTimeoutMS keeps its own.
func Connect(ctx context.Context, uri string, log zerolog.Logger) (*Conn, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, err
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = DefaultDatabase
	}
	copts := options.Client().SetTimeout(30 * time.Second).SetServerSelectionTimeout(2 * time.Second).ApplyURI(uri)
	client, err := mongo.Connect(copts)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("MongoDB at %s does not answer: %w", strings.Join(cs.Hosts, ","), err)
	}
	return &Conn{client: client, db: client.Database(dbName), log: log}, nil
}

// DB is the read models' database (also home to what is kept beside
// them and is not a read model: the personal-data keys).
func (c *Conn) DB() *mongo.Database { return c.db }

// Database is the name of the read models' database.
func (c *Conn) Database() string { return c.db.Name() }

// Ping checks that the server answers (a readiness check).
func (c *Conn) Ping(ctx context.Context) error { return c.client.Ping(ctx, nil) }

// Control is the channel through which separate processes report and
// request projection operations.
func (c *Conn) Control() *Control { return NewControl(c.db) }

// Models opens the read models of the database (see New). Processes
// starting together (api replicas, the projector) create the indexes at
// once, and a server may drop a connection meanwhile (FerretDB v1 does on
// concurrent index creation): an unavailable server is retried until ctx
// ends, anything else is an error at once.
func (c *Conn) Models(ctx context.Context) (*Models, error) {
	backoff := 50 * time.Millisecond
	for {
		m, err := New(ctx, c.db)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil {
			return nil, fmt.Errorf("open read models in database %s: %w", c.db.Name(), err)
		}
		c.log.Warn().Err(err).Dur("backoff", backoff).Msg("opening the MongoDB read models failed; retrying")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("open read models in database %s: %w", c.db.Name(), err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Close disconnects, waiting at most 10 s for operations in flight.
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.client.Disconnect(ctx)
}
