package store

import (
	"reflect"

	"tether/balancer"
)

// Normalize returns a deep copy of st in the form LoadState returns: every
// empty slice or map is nil. Two states that store the same way are
// reflect.DeepEqual once normalised, so tests can compare the balancer's
// State with what the store loads back.
func Normalize(st balancer.State) balancer.State {
	v := reflect.ValueOf(&st).Elem()
	out := reflect.New(v.Type()).Elem()
	normalizeInto(out, v)
	return out.Interface().(balancer.State)
}

// normalizeInto deep-copies src into dst, turning empty slices and maps
// into nil.
func normalizeInto(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		// Unexported fields (a time.Time's) are copied as they are.
		dst.Set(src)
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				normalizeInto(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		normalizeInto(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Slice:
		if src.Len() == 0 {
			dst.Set(reflect.Zero(dst.Type()))
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			normalizeInto(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.Len() == 0 {
			dst.Set(reflect.Zero(dst.Type()))
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			e := reflect.New(src.Type().Elem()).Elem()
			normalizeInto(e, it.Value())
			m.SetMapIndex(it.Key(), e)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}
