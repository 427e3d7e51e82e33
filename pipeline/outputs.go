package pipeline

import (
	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
)

// Shipping is one output of one key of an intake: what one shipper sends,
// from a buffer subject of its own. The intake's keys each ship to every
// output of the intake; the receiver stores each record once under the
// subject of each output of its key (see buffer.Destination), so that a
// dead or slow output holds up no other.
type Shipping struct {
	// Intake is the key's intake (the intake itself, or a RouteKey's)
	// with Output (and Outputs, of one) the output shipped to, named as
	// its shipper's metrics and logs go: the key's name for its first
	// output, name#output for the others ("Firewall#archive").
	Intake config.Intake
	// Subject is where its records wait: the key's subject for the first
	// output, so that a buffer written before the list grew is found
	// again, and one of its own for each other output.
	Subject string
}

// Shippings are an intake's shippings: for its own key (when it has one)
// then each key its routes send to, one per output, in the list's order.
func Shippings(in config.Intake) []Shipping {
	out := OwnShippings(in)
	for _, k := range RouteKeys(in) {
		out = append(out, keyShippings(k, false)...)
	}
	return out
}

// keyShippings are one key's shippings, one per output.
func keyShippings(k RouteKey, own bool) []Shipping {
	outs := k.Intake.Outputs
	if len(outs) == 0 && k.Intake.Output != nil {
		outs = []config.Output{*k.Intake.Output}
	}
	ss := make([]Shipping, len(outs))
	for j := range outs {
		ki := k.Intake
		ki.Outputs = outs[j : j+1]
		ki.Output = &ki.Outputs[0]
		subject := k.Subject
		if j > 0 {
			ki.Name = k.Intake.Name + "#" + outs[j].Name
			// The intake's own: the subject of its shipper's name, where
			// `flowgate dlq resend` puts its dead letters back. A routed
			// key's: named after the key's, as its first output's is.
			subject = buffer.Subject(ki.Name)
			if !own {
				subject = buffer.OutputSubject(k.Subject, outs[j].Name)
			}
		}
		ss[j] = Shipping{Intake: ki, Subject: subject}
	}
	return ss
}

// destination is where a receiver stores the records of a key: a copy
// under the subject of each of its outputs.
func destination(ss []Shipping) string {
	subjects := make([]string, len(ss))
	for i, s := range ss {
		subjects[i] = s.Subject
	}
	return buffer.Destination(subjects...)
}

// OwnShippings are the shippings of the intake's own key, one per output;
// none without a key.
func OwnShippings(in config.Intake) []Shipping {
	if in.IntakeKey == "" {
		return nil
	}
	return keyShippings(RouteKey{Intake: in, Subject: buffer.Subject(in.Name)}, true)
}

// OtherOutputs are the shippings of the outputs of an intake's own key
// but the first, which goes by the intake's name: each ships as an
// intake#name of its own.
func OtherOutputs(in config.Intake) []Shipping {
	own := OwnShippings(in)
	if len(own) < 2 {
		return nil
	}
	return own[1:]
}
