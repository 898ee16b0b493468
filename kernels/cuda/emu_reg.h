// Registration of host-compiled kernels with the emulator: EMU_REG(k) records kernel k under its
// name with a caller that unpacks the 64-bit launch arguments into k's parameter types.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>

void emu_register(const char *name, std::function<void(const uint64_t *)> fn);

template <class T>
T emu_conv(uint64_t v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<T>(static_cast<uintptr_t>(v));
  } else if constexpr (std::is_same_v<T, float>) {
    uint32_t u = static_cast<uint32_t>(v);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  } else if constexpr (sizeof(T) == 8) {
    return static_cast<T>(v);
  } else {
    return static_cast<T>(static_cast<int32_t>(static_cast<uint32_t>(v)));
  }
}

template <class... A, std::size_t... I>
void emu_call_i(void (*f)(A...), const uint64_t *a, std::index_sequence<I...>) {
  f(emu_conv<A>(a[I])...);
}

template <class... A>
void emu_call(void (*f)(A...), const uint64_t *a) {
  emu_call_i(f, a, std::index_sequence_for<A...>{});
}

#define EMU_REG(k) static int emu_reg_##k = (emu_register(#k, [](const uint64_t *a) { emu_call(k, a); }), 0);
