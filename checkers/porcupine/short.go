package main

// What short texts stand for, found without a map. A history's keys, values and fs are few and
// short ("k3", "4", "null", "cas", "[4, 0]"), and the reader and the model looked each one up
// in a map, for every event: hashing the text, probing, comparing (a seventh of the reading's
// CPU on a 10k history). A text of at most 7 bytes packs into a word with its length; a
// direct-mapped table of such words answers most lookups with one multiplication and one
// comparison, and the map behind it answers the rest (longer texts, and words that collided).

type shortTexts[V any] struct {
	words  [shortSlots]uint64 // 0: empty (a packed word holds its length + 1, never 0)
	values [shortSlots]V
}

const (
	shortBits  = 8
	shortSlots = 1 << shortBits
)

// packText is text's word; 0 for a text of more than 7 bytes, which no table holds.
func packText[T ~string | ~[]byte](text T) uint64 {
	if len(text) > 7 {
		return 0
	}
	word := uint64(len(text)+1) << 56
	for i := 0; i < len(text); i++ {
		word |= uint64(text[i]) << (8 * i)
	}
	return word
}

func shortSlot(word uint64) int { return int((word * 0x9e3779b97f4a7c15) >> (64 - shortBits)) }

// get is the value kept for word (packText's); false for 0, a text too long to pack.
func (t *shortTexts[V]) get(word uint64) (V, bool) {
	slot := shortSlot(word)
	if word != 0 && t.words[slot] == word {
		return t.values[slot], true
	}
	var none V
	return none, false
}

// put keeps value for word, in place of whatever shared its slot; nothing for 0.
func (t *shortTexts[V]) put(word uint64, value V) {
	if word != 0 {
		slot := shortSlot(word)
		t.words[slot], t.values[slot] = word, value
	}
}
