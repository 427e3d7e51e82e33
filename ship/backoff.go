package ship

import (
	"math/rand/v2"
	"time"
)

// Backoff paces retries: exponential with full jitter, capped, and never
// shorter than what the remote side asked for (Retry-After).
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	// MaxRetryAfter caps a requested wait, against a remote side asking
	// for hours.
	MaxRetryAfter time.Duration
}

// DefaultBackoff retries quickly at first and every 30 s at most, as the
// best shippers do.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, MaxRetryAfter: 5 * time.Minute}

// Delay is the wait before retry number attempt (from 0).
func (b Backoff) Delay(attempt int, requested time.Duration) time.Duration {
	ceiling := b.Max
	if attempt < 30 {
		ceiling = min(b.Max, b.Initial<<attempt)
	}
	// Full jitter spreads the retries of many appliances after an outage;
	// half of it is kept so the wait still grows.
	d := ceiling/2 + rand.N(ceiling/2+1)
	return max(d, min(requested, b.MaxRetryAfter))
}
