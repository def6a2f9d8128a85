package vfs

// memPageSize is the unit of copy-on-write sharing in Mem's file contents.
const memPageSize = 4 << 10

type memPage struct {
	owner *memBuf // the only buffer that may write it in place; nil: shared
	b     [memPageSize]byte
}

// memBuf is a file's contents as pages that clones share until one of them
// writes, so that a file's current and durable contents cost O(pages) to
// copy rather than O(bytes). A nil page reads as zeros. Bytes at or past
// size are zero in every page.
type memBuf struct {
	pages []*memPage
	size  int64
}

// clone returns a buffer with the same contents, sharing every page.
func (b *memBuf) clone() memBuf {
	for _, p := range b.pages {
		if p != nil {
			p.owner = nil
		}
	}
	return memBuf{pages: append([]*memPage(nil), b.pages...), size: b.size}
}

// page returns page i ready for writing by b.
func (b *memBuf) page(i int64) *memPage {
	p := b.pages[i]
	switch {
	case p == nil:
		p = &memPage{owner: b}
	case p.owner != b:
		c := &memPage{owner: b}
		c.b = p.b
		p = c
	default:
		return p
	}
	b.pages[i] = p
	return p
}

func (b *memBuf) readAt(p []byte, off int64) int {
	if off >= b.size {
		return 0
	}
	p = p[:min(int64(len(p)), b.size-off)]
	for n := 0; n < len(p); {
		i, o := (off+int64(n))/memPageSize, (off+int64(n))%memPageSize
		var c int
		if pg := b.pages[i]; pg == nil {
			c = copy(p[n:], zeroPage[o:])
		} else {
			c = copy(p[n:], pg.b[o:])
		}
		n += c
	}
	return len(p)
}

var zeroPage [memPageSize]byte

func (b *memBuf) writeAt(p []byte, off int64) {
	end := off + int64(len(p))
	if need := (end + memPageSize - 1) / memPageSize; need > int64(len(b.pages)) {
		b.pages = append(b.pages, make([]*memPage, need-int64(len(b.pages)))...)
	}
	for n := 0; n < len(p); {
		i, o := (off+int64(n))/memPageSize, (off+int64(n))%memPageSize
		n += copy(b.page(i).b[o:], p[n:])
	}
	b.size = max(b.size, end)
}

func (b *memBuf) truncate(size int64) {
	if size >= b.size {
		if need := (size + memPageSize - 1) / memPageSize; need > int64(len(b.pages)) {
			b.pages = append(b.pages, make([]*memPage, need-int64(len(b.pages)))...)
		}
		b.size = size
		return
	}
	keep := (size + memPageSize - 1) / memPageSize
	clear(b.pages[keep:])
	b.pages = b.pages[:keep]
	if o := size % memPageSize; o != 0 && b.pages[keep-1] != nil {
		pg := b.page(keep - 1)
		clear(pg.b[o:])
	}
	b.size = size
}

// bytes returns a copy of the contents (for tests and debugging).
func (b *memBuf) bytes() []byte {
	out := make([]byte, b.size)
	b.readAt(out, 0)
	return out
}
