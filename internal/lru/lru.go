// Package lru is a map with a bounded number of entries that forgets the
// least recently used one to make room: the state a server keeps per
// client stays bounded whatever the number of clients.
package lru

// Map is a bounded least-recently-used map. It is not safe for concurrent
// use; callers hold their own lock.
type Map[K comparable, V any] struct {
	max  int
	m    map[K]*node[K, V]
	head *node[K, V] // most recently used
	tail *node[K, V] // least recently used
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next *node[K, V]
}

// New returns a map of at most size entries (at least 1).
func New[K comparable, V any](size int) *Map[K, V] {
	return &Map[K, V]{max: max(size, 1), m: make(map[K]*node[K, V])}
}

// Len returns the number of entries.
func (c *Map[K, V]) Len() int { return len(c.m) }

// Get returns the value of k and marks it used.
func (c *Map[K, V]) Get(k K) (V, bool) {
	n, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.toFront(n)
	return n.val, true
}

// Put sets the value of k, marks it used and, when the map is full,
// forgets the least recently used entry. It returns whether one was
// forgotten.
func (c *Map[K, V]) Put(k K, v V) (evicted bool) {
	if n, ok := c.m[k]; ok {
		n.val = v
		c.toFront(n)
		return false
	}
	if len(c.m) >= c.max {
		old := c.tail
		c.unlink(old)
		delete(c.m, old.key)
		evicted = true
	}
	n := &node[K, V]{key: k, val: v}
	c.m[k] = n
	c.pushFront(n)
	return evicted
}

// Delete forgets k.
func (c *Map[K, V]) Delete(k K) {
	if n, ok := c.m[k]; ok {
		c.unlink(n)
		delete(c.m, k)
	}
}

func (c *Map[K, V]) toFront(n *node[K, V]) {
	if c.head == n {
		return
	}
	c.unlink(n)
	c.pushFront(n)
}

func (c *Map[K, V]) pushFront(n *node[K, V]) {
	n.prev, n.next = nil, c.head
	if c.head != nil {
		c.head.prev = n
	}
	c.head = n
	if c.tail == nil {
		c.tail = n
	}
}

func (c *Map[K, V]) unlink(n *node[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		c.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		c.tail = n.prev
	}
	n.prev, n.next = nil, nil
}
