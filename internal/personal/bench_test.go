package personal_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prescripto/prescripto/internal/personal"
)

// BenchmarkSeal and BenchmarkOpen: one personal field (a name) with the
// key in the vault's memory, as on a booking and on a read model's apply.
func BenchmarkSeal(b *testing.B) {
	v := personal.NewVault(personal.NewMemoryKeyStore())
	for b.Loop() {
		if _, err := v.Seal("patient-1", "Meera Iyer"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	v := personal.NewVault(personal.NewMemoryKeyStore())
	sealed, err := v.Seal("patient-1", "Meera Iyer")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Open(sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdKeyFile: the first use of a person's key, read from the
// file key store (a vault with nothing in memory each time).
func BenchmarkColdKeyFile(b *testing.B) {
	ks, err := personal.OpenFileKeyStore(filepath.Join(b.TempDir(), "keys"))
	if err != nil {
		b.Fatal(err)
	}
	const people = 1000
	sealed := make([]string, people)
	w := personal.NewVault(ks)
	for i := range sealed {
		if sealed[i], err = w.Seal(fmt.Sprintf("p-%d", i), "Meera Iyer"); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		v := personal.NewVault(ks)
		if _, err := v.Open(sealed[i%people]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
