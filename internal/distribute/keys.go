package distribute

import (
	"errors"
	"fmt"
	"os"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/minisign"
)

// Environment variables of the signing key, for CI where the key is a
// secret rather than a file.
const (
	EnvSigningKey      = "KILN_SIGNING_KEY"
	EnvSigningPassword = "KILN_SIGNING_KEY_PASSWORD"
)

// LoadSigningKey reads the project's minisign secret key — the content of
// $KILN_SIGNING_KEY, else the file distribution.signing_key — decrypts it
// with $KILN_SIGNING_KEY_PASSWORD when it is encrypted, and checks that
// it is the key of distribution.public_key. Neither the key nor the
// password ever appears in an error.
func LoadSigningKey(cfg *config.Config, getenv func(string) string) (minisign.PrivateKey, error) {
	ds := cfg.Distribution
	if ds == nil {
		return minisign.PrivateKey{}, errors.New("no distribution section in " + cfg.Path)
	}
	var (
		data  []byte
		where string
	)
	switch {
	case getenv(EnvSigningKey) != "":
		data, where = []byte(getenv(EnvSigningKey)), "$"+EnvSigningKey
	case ds.SigningKey != "":
		where = cfg.Resolve(ds.SigningKey)
		var err error
		if data, err = os.ReadFile(where); err != nil {
			return minisign.PrivateKey{}, fmt.Errorf("distribution.signing_key: read the signing key: %w; nothing was published", err)
		}
	default:
		return minisign.PrivateKey{}, fmt.Errorf("distribution: no signing key: set distribution.signing_key in %s to a minisign secret key file (minisign -G), or put the file's content in $%s; nothing was published", cfg.Path, EnvSigningKey)
	}
	password := func() ([]byte, error) { return []byte(getenv(EnvSigningPassword)), nil }
	key, err := minisign.ParsePrivateKey(data, password)
	switch {
	case errors.Is(err, minisign.ErrPasswordNeeded):
		return key, fmt.Errorf("signing key %s is encrypted: put its password in $%s; nothing was published", where, EnvSigningPassword)
	case errors.Is(err, minisign.ErrWrongPassword):
		return key, fmt.Errorf("signing key %s: $%s is not its password; nothing was published", where, EnvSigningPassword)
	case err != nil:
		return key, fmt.Errorf("signing key %s: %w; nothing was published", where, err)
	}
	pub, err := minisign.ParsePublicKey(ds.PublicKey)
	if err != nil {
		return key, fmt.Errorf("distribution.public_key: %w", err)
	}
	if !key.Public().Equal(pub) {
		return key, fmt.Errorf("signing key %s (key id %s) is not the key of distribution.public_key (key id %s): users could not verify what it signs; nothing was published",
			where, key.ID, pub.ID)
	}
	return key, nil
}

// PublicKey returns the project's distribution.public_key.
func PublicKey(cfg *config.Config) (minisign.PublicKey, error) {
	if cfg.Distribution == nil {
		return minisign.PublicKey{}, errors.New("no distribution section in " + cfg.Path + ": give --public-key")
	}
	return minisign.ParsePublicKey(cfg.Distribution.PublicKey)
}
