package store_test

import (
	"reflect"
	"testing"

	"tether/balancer"
	"tether/store"
)

// TestServerEqualSeesEveryField changes each field of a server in turn:
// ServerEqual must notice every one, or a change to a new field would not
// be stored.
func TestServerEqualSeesEveryField(t *testing.T) {
	var base balancer.Server
	n := 0
	fillValue(t, reflect.ValueOf(&base).Elem(), "Server", &n)
	if !store.ServerEqual(&base, &base) {
		t.Fatal("a server differs from itself")
	}
	typ := reflect.TypeFor[balancer.Server]()
	for i := range typ.NumField() {
		changed := base
		changed.InitAddr = append([]string(nil), base.InitAddr...)
		f := reflect.ValueOf(&changed).Elem().Field(i)
		f.Set(reflect.Zero(f.Type()))
		if store.ServerEqual(&base, &changed) {
			t.Errorf("ServerEqual misses a change of Server.%s", typ.Field(i).Name)
		}
	}
}
