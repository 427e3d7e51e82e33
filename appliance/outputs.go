package appliance

import (
	"context"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/pipeline"
)

// DescribeOutputs says where an intake's outputs send: the first as
// DescribeOutput does (it goes by the intake's name), then "+ name: ..."
// for each other.
func DescribeOutputs(in config.Intake) string {
	d := DescribeOutput(in.Output)
	for i := 1; i < len(in.Outputs); i++ {
		d += " + " + in.Outputs[i].Name + ": " + DescribeOutput(&in.Outputs[i])
	}
	return d
}

// backlogged names what the log and the status page follow the backlog
// of: each output of each intake's own key (the first by the intake's
// name, the others intake#name), and an intake without a key by its name.
func backlogged(c *config.Config) []pipeline.Shipping {
	var out []pipeline.Shipping
	for _, in := range c.Intakes {
		own := pipeline.OwnShippings(in)
		if len(own) == 0 {
			own = []pipeline.Shipping{{Intake: in, Subject: buffer.Subject(in.Name)}}
		}
		out = append(out, own...)
	}
	return out
}

// logLeftBehind says, after a reload, what waits in the buffer for the
// shippers that no longer run (an intake, a routed key or an output
// removed): it stays there and ships if they come back.
func (a *Appliance) logLeftBehind(ctx context.Context, old, next *config.Config) {
	running := map[string]bool{}
	for _, in := range next.Intakes {
		for _, s := range pipeline.Shippings(in) {
			running[s.Subject] = true
		}
	}
	removed := map[string]bool{}
	for _, in := range old.Intakes {
		removed[in.Name] = true
	}
	for _, in := range next.Intakes {
		delete(removed, in.Name)
	}
	for _, in := range old.Intakes {
		outputs := map[string]bool{}
		for _, s := range pipeline.OtherOutputs(in) {
			outputs[s.Subject] = true
		}
		for _, s := range pipeline.Shippings(in) {
			if running[s.Subject] {
				continue
			}
			depth, err := a.buf.Depth(ctx, s.Subject)
			if err != nil || depth == 0 {
				continue
			}
			const stay = ": its records stay in the buffer, and ship if it comes back"
			switch {
			case removed[in.Name] && s.Intake.Name == in.Name:
				a.log.Warn("intake removed"+stay, "intake", in.Name, "messages", depth)
			case outputs[s.Subject]:
				a.log.Warn("output removed"+stay, "intake", in.Name, "output", s.Intake.Name, "messages", depth)
			default: // a routed key, or the intake's own key
				a.log.Warn("intake key no longer shipped"+stay, "intake", in.Name, "shipper", s.Intake.Name,
					"key", config.MaskKey(s.Intake.IntakeKey), "messages", depth)
			}
		}
	}
}
