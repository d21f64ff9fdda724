package personal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain"
)

// MemoryKeyStore keeps keys in memory (tests, and a process whose event
// store is in memory too).
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[string][]byte // nil value: tombstone
}

// NewMemoryKeyStore returns an empty key store.
func NewMemoryKeyStore() *MemoryKeyStore { return &MemoryKeyStore{keys: map[string][]byte{}} }

// Get implements KeyStore.
func (m *MemoryKeyStore) Get(_ context.Context, subject string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[subject]
	switch {
	case !ok:
		return nil, ErrNoKey
	case k == nil:
		return nil, ErrErased
	}
	return bytes.Clone(k), nil
}

// Create implements KeyStore.
func (m *MemoryKeyStore) Create(_ context.Context, subject string, key []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[subject]; ok {
		if k == nil {
			return nil, ErrErased
		}
		return bytes.Clone(k), nil
	}
	m.keys[subject] = bytes.Clone(key)
	return bytes.Clone(key), nil
}

// Erase implements KeyStore.
func (m *MemoryKeyStore) Erase(_ context.Context, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[subject] = nil
	return nil
}

// FileKeyStore keeps one file per subject in a directory of the data dir
// (mode 0700, files 0600): the key's 32 bytes, or an empty file for a
// tombstone. A key is created by linking a complete, synced file into
// place (the first writer wins, also across processes); an erasure
// renames an empty file over it, so the key's bytes are unlinked with the
// old file (what the file system keeps of freed blocks is below this
// store: put the data dir on an encrypted volume when that matters).
type FileKeyStore struct{ dir string }

// OpenFileKeyStore opens (creating) the key directory dir.
func OpenFileKeyStore(dir string) (*FileKeyStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("personal: key store: %w", err)
	}
	return &FileKeyStore{dir: dir}, nil
}

func (f *FileKeyStore) path(subject string) (string, error) {
	if !ValidSubject(subject) {
		return "", fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	return filepath.Join(f.dir, subject+".key"), nil
}

// Get implements KeyStore.
func (f *FileKeyStore) Get(_ context.Context, subject string) ([]byte, error) {
	p, err := f.path(subject)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, ErrNoKey
	case err != nil:
		return nil, fmt.Errorf("personal: key store: %w", err)
	case len(b) == 0:
		return nil, ErrErased
	}
	return b, nil
}

// Create implements KeyStore.
func (f *FileKeyStore) Create(ctx context.Context, subject string, key []byte) ([]byte, error) {
	p, err := f.path(subject)
	if err != nil {
		return nil, err
	}
	tmp, err := f.writeTemp(key)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return f.Get(ctx, subject)
		}
		return nil, fmt.Errorf("personal: key store: %w", err)
	}
	if err := syncDir(f.dir); err != nil {
		return nil, err
	}
	return key, nil
}

// Erase implements KeyStore.
func (f *FileKeyStore) Erase(_ context.Context, subject string) error {
	p, err := f.path(subject)
	if err != nil {
		return err
	}
	tmp, err := f.writeTemp(nil)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("personal: key store: %w", err)
	}
	return syncDir(f.dir)
}

// writeTemp writes b to a new synced file of the directory.
func (f *FileKeyStore) writeTemp(b []byte) (string, error) {
	t, err := os.CreateTemp(f.dir, ".new-*")
	if err != nil {
		return "", fmt.Errorf("personal: key store: %w", err)
	}
	_, werr := t.Write(b)
	if werr == nil {
		werr = t.Sync()
	}
	if cerr := t.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(t.Name())
		return "", fmt.Errorf("personal: key store: %w", werr)
	}
	return t.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("personal: key store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("personal: key store: %w", err)
	}
	return nil
}

// CollKeys is the MongoDB collection of the data keys. It is not a read
// model: it cannot be rebuilt from the log, so back it up with the log and
// never drop it.
const CollKeys = "personal_keys"

// MongoKeyStore keeps keys in a MongoDB collection, one document per
// subject: {_id: subject, key: <32 bytes>} or {_id: subject, erased: true}.
type MongoKeyStore struct{ coll *mongo.Collection }

// NewMongoKeyStore returns the key store of db.
func NewMongoKeyStore(db *mongo.Database) *MongoKeyStore {
	return &MongoKeyStore{coll: db.Collection(CollKeys)}
}

// Init creates the collection if it is missing (servers that drop
// connections when many writers create one collection at once, FerretDB
// among them, then see it exist), retrying while the server is out of
// reach until ctx ends.
func (m *MongoKeyStore) Init(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		err := m.coll.Database().CreateCollection(ctx, CollKeys)
		var ce mongo.CommandError
		if err == nil || errors.As(err, &ce) && (ce.Code == 48 || ce.Name == "NamespaceExists") {
			return nil
		}
		select {
		case <-ctx.Done():
			return unavailable(err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

type keyDoc struct {
	ID     string `bson:"_id"`
	Key    []byte `bson:"key,omitempty"`
	Erased bool   `bson:"erased,omitempty"`
}

// Get implements KeyStore.
func (m *MongoKeyStore) Get(ctx context.Context, subject string) ([]byte, error) {
	var d keyDoc
	err := m.coll.FindOne(ctx, bson.D{{Key: "_id", Value: subject}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, ErrNoKey
	case err != nil:
		return nil, unavailable(err)
	case d.Erased:
		return nil, ErrErased
	}
	return d.Key, nil
}

// Create implements KeyStore: an insert, whose duplicate-key failure means
// another writer won.
func (m *MongoKeyStore) Create(ctx context.Context, subject string, key []byte) ([]byte, error) {
	_, err := m.coll.InsertOne(ctx, keyDoc{ID: subject, Key: key})
	if mongo.IsDuplicateKeyError(err) {
		return m.Get(ctx, subject)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return key, nil
}

// Erase implements KeyStore: the document is replaced by a tombstone
// (MongoDB frees the key's bytes in its storage as it compacts).
func (m *MongoKeyStore) Erase(ctx context.Context, subject string) error {
	_, err := m.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: subject}}, keyDoc{ID: subject, Erased: true}, options.Replace().SetUpsert(true))
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable marks a database failure as the key store being out of reach
// (a reader retries; nothing is taken for erased).
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("personal: key store: %w: %w", domain.ErrUnavailable, err)
}
