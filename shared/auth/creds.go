package auth

import (
	"context"
	"sync"
	"time"
)

// refreshBefore renews a service token this long before it expires, so a
// call never leaves with a token that dies in flight.
const refreshBefore = time.Minute

// ServiceCredentials are gRPC per-call credentials carrying a service-role
// token for the named deployable, minted by signer and renewed before it
// expires. They let one shopfn service call another's internal methods.
// (In the cloud, Google ID tokens take their place: issue 6.)
type ServiceCredentials struct {
	signer  *Signer
	service string

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewServiceCredentials returns credentials for the deployable service.
func NewServiceCredentials(signer *Signer, service string) *ServiceCredentials {
	return &ServiceCredentials{signer: signer, service: service}
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *ServiceCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || time.Until(c.expires) < refreshBefore {
		tok, exp, err := ServiceToken(c.signer, c.service)
		if err != nil {
			return nil, err
		}
		c.token, c.expires = tok, exp
	}
	return map[string]string{"authorization": "Bearer " + c.token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. The
// tokens travel over plaintext h2c inside a cluster and on loopback in
// development, so TLS is not required here.
func (c *ServiceCredentials) RequireTransportSecurity() bool { return false }
