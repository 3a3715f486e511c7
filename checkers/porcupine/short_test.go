package main

import "testing"

func TestShortTextsTellEveryShortTextApartAndHoldNoLongOne(t *testing.T) {
	texts := []string{"", "\x00", "\x00\x00", "a", "a\x00", "k1", "1k", "null", "[4,0]", "[4, 0]", "1234567"}
	var table shortTexts[int]
	seen := map[uint64]string{}
	for i, text := range texts {
		word := packText(text)
		if word == 0 || packText([]byte(text)) != word {
			t.Fatalf("%q: word %x", text, word)
		}
		if other, ok := seen[word]; ok {
			t.Fatalf("%q and %q pack alike", text, other)
		}
		seen[word] = text
		table.put(word, i)
	}
	for i, text := range texts { // a slot two of them share holds the later one: the other misses
		if got, ok := table.get(packText(text)); ok && got != i {
			t.Fatalf("%q: got %d, want %d", text, got, i)
		}
	}
	if got, ok := table.get(packText("k1")); !ok || got != 5 {
		t.Fatalf("k1: %d %v", got, ok)
	}
	long := packText("12345678")
	table.put(long, 99)
	if long != 0 {
		t.Fatalf("an 8-byte text packs: %x", long)
	}
	if _, ok := table.get(long); ok {
		t.Fatal("a text too long to pack is found")
	}
}
