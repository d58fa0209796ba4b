package cuda

import (
	"fmt"
	"reflect"
)

// bindFields fills every func field of the struct pointed to by api:
// lookup gives a field's symbol address, register installs it (purego's
// RegisterFunc). The first missing symbol is the error.
func bindFields(api any, lookup func(field string) (uintptr, string, error), register func(fptr any, cfn uintptr)) error {
	v := reflect.ValueOf(api).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type.Kind() != reflect.Func {
			continue
		}
		p, sym, err := lookup(t.Field(i).Name)
		if err != nil || p == 0 {
			return fmt.Errorf("symbol %s", sym)
		}
		f := reflect.NewAt(t.Field(i).Type, v.Field(i).Addr().UnsafePointer())
		register(f.Interface(), p)
	}
	return nil
}
