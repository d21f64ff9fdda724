package commands

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// PasswordHasher hashes and checks passwords with a slow salted hash.
type PasswordHasher interface {
	Hash(password string) (string, error)
	// Compare returns nil when password matches hash.
	Compare(hash, password string) error
}

// DefaultBcryptCost is the production bcrypt cost.
const DefaultBcryptCost = 11

// BcryptHasher hashes with bcrypt.
type BcryptHasher struct{ Cost int }

// Hash hashes password.
func (b BcryptHasher) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), b.Cost)
	if err != nil {
		return "", fmt.Errorf("commands: hash password: %w", err)
	}
	return string(h), nil
}

// Compare checks password against hash.
func (b BcryptHasher) Compare(hash, password string) error {
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		return errors.New("password mismatch")
	}
	return nil
}
