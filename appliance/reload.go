package appliance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/pipeline"
)

// errStopped refuses a reload once the stop began.
var errStopped = errors.New("the appliance is stopping")

// Reload runs c in place of the running configuration, by swap: the
// intakes that are new or changed are made and started, the running
// snapshot is swapped, then the intakes that left are stopped; the others
// and the buffer run on. An intake stops before its replacement starts
// when they share a name (its consumer) or a port. If an intake cannot
// start, the running configuration stays as it was and the error says
// why. Changes of the buffer, http, shutdown and log wait for the next
// start.
func (a *Appliance) Reload(c *config.Config) error {
	a.life.Lock()
	defer a.life.Unlock()
	if a.stopped {
		return errStopped
	}
	old := a.running.Load()
	next := *c
	if !reflect.DeepEqual(next.Buffer, old.cfg.Buffer) || next.HTTP != old.cfg.HTTP || next.Shutdown != old.cfg.Shutdown || next.GeoIP != old.cfg.GeoIP {
		a.log.Warn("buffer, http, shutdown and geoip changes take effect at the next start")
		next.Buffer, next.HTTP, next.Shutdown, next.GeoIP = old.cfg.Buffer, old.cfg.HTTP, old.cfg.Shutdown, old.cfg.GeoIP
	}
	// The logger was made at start, where run's flags won over the file.
	next.Log = old.cfg.Log

	byName := map[string]*pipeline.Intake{}
	for _, it := range old.intakes {
		byName[it.Config().Name] = it
	}
	var adding []config.Intake
	wanted, listens := map[string]bool{}, map[string]bool{}
	var first, after []*pipeline.Intake
	for _, in := range next.Intakes {
		wanted[in.Name] = true
		it, ok := byName[in.Name]
		if ok && sameIntake(it.Config(), in) {
			continue
		}
		if ok {
			first = append(first, it)
		}
		adding = append(adding, in)
		if k := listenKey(in); k != "" {
			listens[k] = true
		}
	}
	var vanished []string
	for _, it := range old.intakes {
		in := it.Config()
		if wanted[in.Name] {
			continue
		}
		vanished = append(vanished, in.Name)
		if listens[listenKey(in)] {
			first = append(first, it)
		} else {
			after = append(after, it)
		}
	}

	parallel(first, (*pipeline.Intake).Stop)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	made := map[string]*pipeline.Intake{}
	for _, in := range adding {
		it, err := a.newIntake(ctx, &next, in, listens[listenKey(in)])
		if err != nil {
			for _, it := range made {
				it.Close()
			}
			a.restore(ctx, old, first)
			a.log.Error("configuration not reloaded: an intake cannot start; the running configuration stays", "config", next.Source, "err", err)
			return fmt.Errorf("configuration not reloaded: %w", err)
		}
		made[in.Name] = it
	}
	s := &snapshot{cfg: &next}
	for _, in := range next.Intakes {
		it, ok := made[in.Name]
		if !ok {
			it = byName[in.Name]
		} else if a.started {
			a.start(it, &next)
		}
		s.intakes = append(s.intakes, it)
	}
	a.running.Store(s)
	for _, name := range vanished {
		a.http.RemoveCheck(checkName(name))
	}
	parallel(after, (*pipeline.Intake).Stop)
	a.log.Info("configuration reloaded", "config", next.Source, "intakes", len(next.Intakes), "started", len(made), "stopped", len(first)+len(after))
	a.logChanges(old.cfg, &next)
	a.logLeftBehind(ctx, old.cfg, &next)
	return nil
}

// portFreed bounds how long an intake waits for a port that an intake
// stopped in the same reload held: the kernel may still count the old
// listener's connections as holding it for a moment.
const portFreed = 5 * time.Second

// newIntake makes an intake of c; one whose port an intake stopped in this
// reload held (freed) tries again for portFreed while it is in use.
func (a *Appliance) newIntake(ctx context.Context, c *config.Config, in config.Intake, freed bool) (*pipeline.Intake, error) {
	deadline := time.Now().Add(portFreed)
	for {
		it, err := pipeline.New(ctx, pipelineConfig(c, in), a.deps)
		if err == nil || !freed || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return it, err
		}
		a.log.Debug("port still held after the reload stopped its intake; trying again", "intake", in.Name, "port", in.Port)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// restore starts again the intakes of the running configuration that a
// failed reload stopped, and swaps in what runs then.
func (a *Appliance) restore(ctx context.Context, old *snapshot, stopped []*pipeline.Intake) {
	if len(stopped) == 0 {
		return
	}
	again := map[*pipeline.Intake]*pipeline.Intake{}
	for _, prev := range stopped {
		in := prev.Config()
		it, err := a.newIntake(ctx, old.cfg, in, true)
		if err != nil {
			a.log.Error("an intake of the running configuration could not start again", "intake", in.Name, "err", err)
			a.http.RemoveCheck(checkName(in.Name))
			continue
		}
		if a.started {
			a.start(it, old.cfg)
		}
		again[prev] = it
	}
	s := &snapshot{cfg: old.cfg}
	for _, it := range old.intakes {
		if slices.Contains(stopped, it) {
			var ok bool
			if it, ok = again[it]; !ok {
				continue
			}
		}
		s.intakes = append(s.intakes, it)
	}
	a.running.Store(s)
}

// sameIntake says whether a running intake can stay as it is.
func sameIntake(a, b config.Intake) bool {
	a.Line, b.Line = 0, 0
	if !config.SameRoutes(a.Routes, b.Routes) {
		return false
	}
	// The compiled rules follow from the routes, and hold functions,
	// which never compare equal.
	a.Routes, b.Routes, a.Table, b.Table = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// listenKey names what an intake binds: its port in its family (tcp and
// tls and http share TCP ports; udp, netflow and sflow UDP ones).
func listenKey(in config.Intake) string {
	network := in.Kind.Network()
	if network == "" {
		return "" // a stats intake binds nothing
	}
	return fmt.Sprintf("%s/%d", network, in.Port)
}
