package convert

import "context"

// buffers is how many chunk buffers a pipeline has: one being filled, one
// being consumed, one ready in between.
const buffers = 3

// piece is one unit handed from a pipeline's producer to its consumer: a
// filled buffer holding the n bytes at off, or (data nil) a run of n zero
// bytes at off that nothing was read for.
type piece struct {
	off, n int64
	data   []byte
}

// pipeline is the buffer pipeline behind Convert and CopyStream: a producer
// goroutine fills chunk-sized buffers from a pool of `buffers` while the
// consumer checksums and writes the previous ones, so reading overlaps the
// CRC work and the writes. Pieces are consumed in the order they were sent.
type pipeline struct {
	ctx  context.Context // cancelled when the consumer stops
	free chan []byte
	out  chan piece
}

// buffer returns an empty buffer of the chunk size, or nil when the
// pipeline is stopping (the producer then returns).
func (p *pipeline) buffer() []byte {
	select {
	case b := <-p.free:
		return b
	case <-p.ctx.Done():
		return nil
	}
}

// send hands pc to the consumer; false when the pipeline is stopping (the
// producer then returns).
func (p *pipeline) send(pc piece) bool {
	select {
	case p.out <- pc:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// runPipeline runs produce in a goroutine and consume on each piece it
// sends, in order, and returns the first error: consume's, produce's (after
// every piece sent before it was consumed), or ctx.Err() when ctx is
// cancelled, which stops both sides at the next piece. It returns only once
// produce has returned, so the caller may then close what it reads from.
// produce returns nil when it has sent everything, or as soon as buffer or
// send reports that the pipeline is stopping.
func runPipeline(ctx context.Context, chunk int, produce func(*pipeline) error, consume func(piece) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pipeline{ctx: ctx, free: make(chan []byte, buffers), out: make(chan piece, buffers)}
	for range buffers {
		p.free <- make([]byte, chunk)
	}
	var perr error // produce's result, set before out is closed
	go func() {
		defer close(p.out)
		perr = produce(p)
	}()
	defer func() {
		cancel()
		for range p.out { // wait for the producer to stop
		}
	}()
	for pc := range p.out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := consume(pc); err != nil {
			return err
		}
		if pc.data != nil {
			p.free <- pc.data[:cap(pc.data)]
		}
	}
	if perr != nil {
		return perr
	}
	return ctx.Err()
}
