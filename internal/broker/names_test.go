package broker

import (
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a", true},
		{"Orders.v1_final-2", true},
		{strings.Repeat("x", 249), true},
		{strings.Repeat("x", 250), false},
		{"", false},
		{".", false},
		{"..", false},
		{"...", true},
		{"has space", false},
		{"slash/inside", false},
		{"back\\slash", false},
		{"colon:x", false},
		{"ünïcode", false},
		{"nul\x00", false},
		{"__consumer_offsets", true}, // valid name; reserved separately
	}
	for _, tt := range tests {
		err := validateTopicName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("validateTopicName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestInternalAndCollision(t *testing.T) {
	if !isInternalTopic("__cluster_metadata") || isInternalTopic("_x") || isInternalTopic("a__") {
		t.Fatal("isInternalTopic wrong")
	}
	if collisionKey("a.b_c") != collisionKey("a_b.c") || collisionKey("ab") == collisionKey("a_b") {
		t.Fatal("collisionKey wrong")
	}
	if got := partitionLogName("t", 12); got != "t-12" {
		t.Fatalf("partitionLogName = %q", got)
	}
}
