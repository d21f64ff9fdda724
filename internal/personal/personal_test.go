package personal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/personal"
	"github.com/prescripto/prescripto/internal/testenv"
)

// stores runs a test against every key store: memory, files, and MongoDB
// (FerretDB) when one can be started.
func stores(t *testing.T, run func(t *testing.T, open func() personal.KeyStore)) {
	t.Run("memory", func(t *testing.T) {
		ks := personal.NewMemoryKeyStore()
		run(t, func() personal.KeyStore { return ks })
	})
	t.Run("files", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "keys")
		run(t, func() personal.KeyStore {
			ks, err := personal.OpenFileKeyStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			return ks
		})
	})
	t.Run("mongodb", func(t *testing.T) {
		uri := testenv.MongoURI(t)
		client, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		db := client.Database(testenv.MongoDatabase(t))
		run(t, func() personal.KeyStore { return personal.NewMongoKeyStore(db) })
	})
}

func TestKeyStores(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, open func() personal.KeyStore) {
		ctx := context.Background()
		a, b := open(), open() // two handles on one store, as two processes
		if _, err := a.Get(ctx, "p1"); !errors.Is(err, personal.ErrNoKey) {
			t.Fatalf("Get of a new subject = %v, want ErrNoKey", err)
		}
		k1 := bytes.Repeat([]byte{1}, personal.KeySize)
		k2 := bytes.Repeat([]byte{2}, personal.KeySize)
		got, err := a.Create(ctx, "p1", k1)
		if err != nil || !bytes.Equal(got, k1) {
			t.Fatalf("Create = %x, %v", got, err)
		}
		// The second writer gets the first writer's key.
		if got, err := b.Create(ctx, "p1", k2); err != nil || !bytes.Equal(got, k1) {
			t.Fatalf("second Create = %x, %v; want the first key", got, err)
		}
		if got, err := b.Get(ctx, "p1"); err != nil || !bytes.Equal(got, k1) {
			t.Fatalf("Get = %x, %v", got, err)
		}
		if err := b.Erase(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(ctx, "p1"); !errors.Is(err, personal.ErrErased) {
			t.Fatalf("Get after Erase = %v, want ErrErased", err)
		}
		// An erased subject never gets a key again.
		if _, err := a.Create(ctx, "p1", k2); !errors.Is(err, personal.ErrErased) {
			t.Fatalf("Create after Erase = %v, want ErrErased", err)
		}
		// Erasing a subject without a key leaves a tombstone too.
		if err := a.Erase(ctx, "p2"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Create(ctx, "p2", k2); !errors.Is(err, personal.ErrErased) {
			t.Fatalf("Create after Erase of a keyless subject = %v, want ErrErased", err)
		}
	})
}

// TestConcurrentCreate: many writers (as many processes) race to create one
// subject's key; all end up with the same key.
func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, open func() personal.KeyStore) {
		const n = 16
		keys := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v := personal.NewVault(open())
				sealed, err := v.Seal("racer", "Asha")
				if err != nil {
					t.Error(err)
					return
				}
				// Each vault opens what any other sealed.
				keys[i] = []byte(sealed)
			})
		}
		wg.Wait()
		v := personal.NewVault(open())
		for i, sealed := range keys {
			if got, err := v.Open(string(sealed)); err != nil || got != "Asha" {
				t.Errorf("value sealed by writer %d opens to %q, %v", i, got, err)
			}
		}
	})
}

func TestVaultSealOpenErase(t *testing.T) {
	t.Parallel()
	ks := personal.NewMemoryKeyStore()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	v := personal.NewVault(ks, personal.WithClock(clock))
	other := personal.NewVault(ks, personal.WithClock(clock)) // another process

	s1, err := v.Seal("p-1", "Ravi Kumar")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := v.Seal("p-1", "Ravi Kumar")
	if s1 == s2 {
		t.Error("equal plaintexts seal to equal values (the nonce is not random)")
	}
	if strings.Contains(s1, "Ravi") {
		t.Errorf("sealed value shows the plaintext: %s", s1)
	}
	if subj, _, ok := domain.ParseSealed(s1); !ok || subj != "p-1" {
		t.Errorf("ParseSealed(%q) = %q, %v", s1, subj, ok)
	}
	for _, vv := range []*personal.Vault{v, other} {
		if got, err := vv.Open(s1); err != nil || got != "Ravi Kumar" {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	// A value moved to another subject does not open (the subject is
	// bound as additional data).
	if _, err := v.Seal("p-2", "x"); err != nil {
		t.Fatal(err)
	}
	_, payload, _ := domain.ParseSealed(s1)
	if _, err := v.Open(domain.SealedValue("p-2", payload)); err == nil {
		t.Error("a value re-labelled to another subject opened")
	}
	// An altered value is an error, not a silent [erased].
	if _, err := v.Open(s1[:len(s1)-2] + "AA"); err == nil {
		t.Error("an altered value opened")
	}

	if err := v.Erase(context.Background(), "p-1"); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Open(s1); err != nil || got != domain.Erased {
		t.Fatalf("Open after Erase = %q, %v; want %q", got, err, domain.Erased)
	}
	// The other process reads its cached key until the cache ends (or it
	// reads the erasure fact: see TestRegistryForgetsOnErasure).
	if got, _ := other.Open(s1); got != "Ravi Kumar" {
		t.Errorf("other process before its cache ends: %q", got)
	}
	now = now.Add(2 * time.Minute)
	if got, err := other.Open(s1); err != nil || got != domain.Erased {
		t.Errorf("other process after its cache ends: %q, %v", got, err)
	}
	// Nothing new about an erased person is stored.
	if got, err := other.Seal("p-1", "Ravi again"); err != nil || got != domain.Erased {
		t.Errorf("Seal after Erase = %q, %v; want %q", got, err, domain.Erased)
	}
	// A sealed value whose key the store lost is an error, not an erasure.
	lost := personal.NewVault(personal.NewMemoryKeyStore())
	if _, err := lost.Open(s2); !errors.Is(err, personal.ErrKeyMissing) {
		t.Errorf("Open with a lost key = %v, want ErrKeyMissing", err)
	}
	if _, err := v.Seal("../etc", "x"); !errors.Is(err, personal.ErrBadSubject) {
		t.Errorf("Seal with a path for a subject = %v", err)
	}
}

// TestRegistryForgetsOnErasure: personal fields are sealed on Encode, left
// sealed by Decode and opened by Open; a registry that decodes the erasure fact makes its
// vault forget the key at once.
func TestRegistryForgetsOnErasure(t *testing.T) {
	t.Parallel()
	ks := personal.NewMemoryKeyStore()
	writer, reader := registry(t, ks), registry(t, ks)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	reserved := doctor.SlotReserved{DoctorID: "d1", AppointmentID: "a1", PatientID: "p-9", PatientName: "Meera Iyer", Start: at, End: at.Add(30 * time.Minute), ReservedAt: at}
	data, err := writer.Encode(reserved)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("Meera")) {
		t.Fatalf("stored data shows the name: %s", data)
	}
	if !bytes.Contains(data, []byte(`"patientId":"p-9"`)) || !bytes.Contains(data, []byte(`"appointmentId":"a1"`)) {
		t.Fatalf("ids must stay readable: %s", data)
	}
	e, err := reader.Decode(reserved.EventType(), data)
	if err != nil || e.(doctor.SlotReserved).PatientName == reserved.PatientName {
		t.Fatalf("Decode = %+v, %v; want the name still sealed", e, err)
	}
	if e, err = reader.Open(e); err != nil || e.(doctor.SlotReserved) != reserved {
		t.Fatalf("Open = %+v, %v", e, err)
	}
	// The key is erased by another process; this one reads the fact.
	if err := personal.NewVault(ks).Erase(context.Background(), "p-9"); err != nil {
		t.Fatal(err)
	}
	fact, _ := writer.Encode(account.PersonalDataErased{AccountID: "p-9", ErasedAt: at})
	if _, err := reader.Decode(account.TypePersonalDataErased, fact); err != nil {
		t.Fatal(err)
	}
	e, err = reader.Decode(reserved.EventType(), data)
	if err == nil {
		e, err = reader.Open(e)
	}
	if err != nil || e.(doctor.SlotReserved).PatientName != domain.Erased {
		t.Fatalf("after the erasure fact: %+v, %v", e, err)
	}
	// Plaintext written before sealing existed still reads.
	plain, _ := domain.Encode(reserved)
	if e, err := reader.Decode(reserved.EventType(), plain); err != nil || e.(doctor.SlotReserved).PatientName != "Meera Iyer" {
		t.Fatalf("legacy plaintext: %+v, %v", e, err)
	}
}

func registry(t *testing.T, ks personal.KeyStore) *domain.Registry {
	t.Helper()
	r, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	r.SetCipher(personal.NewVault(ks))
	return r
}

// TestFileKeyStoreShreds: after an erasure the key's bytes are in no file
// of the key directory.
func TestFileKeyStoreShreds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := personal.OpenFileKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0xA7}, personal.KeySize)
	ctx := context.Background()
	if _, err := ks.Create(ctx, "p1", key); err != nil {
		t.Fatal(err)
	}
	if err := ks.Erase(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, key) {
			t.Errorf("%s still holds the key", e.Name())
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

// stallingStore is a key store that, while stalled, answers nothing until
// the caller's context ends (a partition), and counts the calls it got.
type stallingStore struct {
	personal.KeyStore
	stalled atomic.Bool
	calls   atomic.Int64
}

func (s *stallingStore) Get(ctx context.Context, subject string) ([]byte, error) {
	s.calls.Add(1)
	if s.stalled.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.KeyStore.Get(ctx, subject)
}

// TestWarmWithinTheCallersDeadline: Warm reads the store within the
// caller's deadline (not the vault's 5 s), a key past its cache time
// serves from memory when the store does not answer, and for a while
// after that the store is not asked again (one bounded wait per key, not
// one per Seal while the store is down).
func TestWarmWithinTheCallersDeadline(t *testing.T) {
	t.Parallel()
	ks := &stallingStore{KeyStore: personal.NewMemoryKeyStore()}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	v := personal.NewVault(ks, personal.WithClock(func() time.Time { return now }))
	ks.stalled.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t0 := time.Now()
	err := v.Warm(ctx, "p-new")
	cancel()
	if err == nil {
		t.Fatal("Warm of a subject without a key answered through a stalled store")
	}
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("Warm took %v with a 100ms deadline", took.Round(time.Millisecond))
	}

	ks.stalled.Store(false)
	if err := v.Warm(context.Background(), "p-1"); err != nil {
		t.Fatal(err)
	}
	sealed, err := v.Seal("p-1", "Ravi Kumar")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute) // past the cache time
	ks.stalled.Store(true)
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	err = v.Warm(ctx, "p-1")
	cancel()
	if err != nil {
		t.Fatalf("Warm with the store down and a key in memory: %v", err)
	}
	calls := ks.calls.Load()
	t0 = time.Now()
	if _, err := v.Seal("p-1", "Ravi Kumar"); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Open(sealed); err != nil || got != "Ravi Kumar" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if took := time.Since(t0); took > time.Second || ks.calls.Load() != calls {
		t.Fatalf("Seal and Open after a failed read asked the store again (%d calls, %v)", ks.calls.Load()-calls, took)
	}
	// Once the store answers and the short grace has passed, it is asked
	// again (an erasure made meanwhile elsewhere is then seen).
	ks.stalled.Store(false)
	if err := ks.KeyStore.Erase(context.Background(), "p-1"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	if got, err := v.Open(sealed); err != nil || got != domain.Erased {
		t.Fatalf("Open after the grace, erased meanwhile = %q, %v; want %q", got, err, domain.Erased)
	}
}
