package ratelimit

import (
	"context"
	"sync"
	"time"
)

// memorySweepEvery is how often Take looks for idle keys to drop.
const memorySweepEvery = time.Minute

// maxMemoryKeys caps the map: past it, idle keys go first, then arbitrary
// ones. Losing a key only forgets its usage, so the cap trades a little
// precision under a flood of distinct keys for bounded memory.
const maxMemoryKeys = 200_000

type memEntry struct {
	tat  time.Time // GCRA theoretical arrival time
	day  int64     // UTC day number of used
	used int64     // bytes granted on day
}

// memory is the in-process store: one replica's limits, exact, and safe
// for concurrent use.
type memory struct {
	lim       limits
	now       func() time.Time
	mu        sync.Mutex
	m         map[string]*memEntry
	lastSweep time.Time
}

func newMemory(l limits) *memory {
	return &memory{lim: l, now: time.Now, m: map[string]*memEntry{}}
}

func (s *memory) take(_ context.Context, key string, n int64) (Decision, error) {
	now := s.now()
	today := now.UnixNano() / int64(day)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= memorySweepEvery || len(s.m) >= maxMemoryKeys {
		s.sweep(now, today)
	}
	e := s.m[key]
	if e == nil {
		e = &memEntry{tat: now, day: today}
	}
	used := e.used
	if e.day != today {
		used = 0
	}
	if s.lim.quota > 0 && used+n > s.lim.quota {
		end := time.Unix(0, (today+1)*int64(day))
		return Decision{Reason: ReasonBytes, RetryAfter: end.Sub(now)}, nil
	}
	tat := e.tat
	if tat.Before(now) {
		tat = now
	}
	if s.lim.interval > 0 {
		newTat := tat.Add(s.lim.interval)
		allowAt := newTat.Add(-s.lim.interval * time.Duration(s.lim.burst))
		if now.Before(allowAt) {
			return Decision{Reason: ReasonGrants, RetryAfter: allowAt.Sub(now)}, nil
		}
		tat = newTat
	}
	e.tat, e.day, e.used = tat, today, used+n
	s.m[key] = e
	return Decision{Allowed: true}, nil
}

// sweep drops keys that remember nothing that still matters: grant state
// fully refilled and no bytes counted today.
func (s *memory) sweep(now time.Time, today int64) {
	s.lastSweep = now
	for k, e := range s.m {
		if !e.tat.After(now) && (s.lim.quota == 0 || e.day != today || e.used == 0) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < maxMemoryKeys {
			break
		}
		delete(s.m, k)
	}
}

func (s *memory) close() error { return nil }

// size is the number of keys held, for tests.
func (s *memory) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
