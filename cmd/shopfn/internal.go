package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
)

// cliTokenTTL is how long a CLI-minted service token lives: one command's
// calls, retries included.
const cliTokenTTL = 5 * time.Minute

// serviceCredentials mint service-role tokens for calling internal methods
// by hand, with the signing key of a local `shopfn dev` (its development key
// in dataDir) or SHOPFN_JWT_SIGNING_KEY. Without access to that key there is
// no way to call internal methods, as intended.
//
// as is the service identity the calls carry: internal methods answer only
// the callers infra/stack.yaml lists (the key's holder can act as any of
// them, so this names the role taken, it grants nothing).
func serviceCredentials(dataDir, as string) (*auth.ServiceCredentials, error) {
	var cfg auth.Config
	if err := config.Load(&cfg); err != nil {
		return nil, err
	}
	if cfg.SigningKey == "" {
		// LoadKeys would generate a key no server has ever seen.
		if _, err := os.Stat(filepath.Join(dataDir, auth.DevKeyFile)); err != nil {
			return nil, fmt.Errorf("internal methods need the services' signing key: no %s in %s (point --data-dir at the data directory of `shopfn dev`, or set SHOPFN_JWT_SIGNING_KEY)", auth.DevKeyFile, dataDir)
		}
	}
	keys, err := auth.LoadKeys(cfg, dataDir)
	if err != nil {
		return nil, err
	}
	cfg.TokenTTL = cliTokenTTL
	signer := keys.NewSigner(cfg)
	if signer == nil {
		return nil, fmt.Errorf("internal methods need the services' signing key (SHOPFN_JWT_SIGNING_KEY)")
	}
	return auth.NewServiceCredentials(signer, as), nil
}
