package main

import "sync"

// turns lets several searches run at once while their steps run one at a
// time, each taking its turn in a fixed order: flowgate, then each peer,
// then flowgate again. Searched one tool after the other, each tool had the
// box of its own half hour: in the full runs 2026-12-04-2354 and
// 2026-12-05-0237 flowgate's IPFIX rate moved 9.5% and nfacctd's 36%, on
// the same binaries, and a ratio between the two carried both. Taken in
// turns, the steps of both tools at a rate are minutes apart (the
// searches climb the same doublings), and a slow half hour slows both.
type turns struct {
	mu   sync.Mutex
	cond sync.Cond
	// turn is the searcher whose step runs next; left are those whose
	// search is over, whose turn is skipped.
	turn int
	left []bool
}

func newTurns(n int) *turns {
	t := &turns{left: make([]bool, n)}
	t.cond.L = &t.mu
	return t
}

// take runs f as searcher k's step once it is k's turn, then passes the
// turn to the next searcher still searching.
func (t *turns) take(k int, f func()) {
	t.mu.Lock()
	for t.turn != k {
		t.cond.Wait()
	}
	t.mu.Unlock()
	defer t.pass()
	f()
}

// leave says searcher k's search is over: its turns are skipped from now.
func (t *turns) leave(k int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.left[k] = true
	if t.turn == k {
		t.advance()
	}
}

func (t *turns) pass() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance()
}

// advance gives the turn to the next searcher after the current one that
// has not left; the current one keeps it when it is the only one left.
// The caller holds t.mu.
func (t *turns) advance() {
	for i := 1; i <= len(t.left); i++ {
		if j := (t.turn + i) % len(t.left); !t.left[j] {
			t.turn = j
			break
		}
	}
	t.cond.Broadcast()
}
