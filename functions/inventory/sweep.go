package inventory

import (
	"context"
	"log/slog"
	"time"

	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
)

// SweepInterval is how often a timer should call ReleaseExpired. Expired
// units are also released on demand when a Reserve or SetStock would fail
// without them, so the sweep only tidies up; every 30 s keeps GetStock's
// reserved figure at most that stale after an expiry, for one cheap call.
const SweepInterval = 30 * time.Second

// sweepLimit is the limit of each ReleaseExpired call Sweep makes (the
// server's default); a call that releases that many is followed by another.
const sweepLimit = 500

// sweepCallTimeout bounds one ReleaseExpired call: a full call is five
// short transactions, well under a second even on a loaded instance.
const sweepCallTimeout = 10 * time.Second

// Sweep calls ReleaseExpired on c at once and then every interval until ctx
// ends, repeating a call while it releases a full batch, so a backlog
// drains within one tick. Failures are logged and tried again on the next
// tick. ReleaseExpired is internal: c's connection must carry service
// credentials. Under `shopfn dev`, for example:
//
//	cc, err := dial.Dial(addr, dial.Options{
//		Idempotent:        []string{inventoryv1.InventoryService_ReleaseExpired_FullMethodName},
//		PerRPCCredentials: auth.NewServiceCredentials(signer, "shopfn-dev"),
//	})
//	…
//	go inventory.Sweep(ctx, inventoryv1.NewInventoryServiceClient(cc), inventory.SweepInterval, log)
//
// In the cloud a Cloud Scheduler job makes the same call instead (a
// scaled-to-zero instance runs no timers).
func Sweep(ctx context.Context, c inventoryv1.InventoryServiceClient, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sweepOnce(ctx, c, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sweepOnce(ctx context.Context, c inventoryv1.InventoryServiceClient, log *slog.Logger) {
	for ctx.Err() == nil {
		callCtx, cancel := context.WithTimeout(ctx, sweepCallTimeout)
		resp, err := c.ReleaseExpired(callCtx, &inventoryv1.ReleaseExpiredRequest{Limit: sweepLimit})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "release expired reservations", "error", err.Error())
			}
			return
		}
		if n := resp.GetReleased(); n > 0 {
			log.InfoContext(ctx, "released expired reservations", "released", n)
		}
		if resp.GetReleased() < sweepLimit {
			return
		}
	}
}
