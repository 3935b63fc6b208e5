// Expected failures as values. std::expected is C++23; this is the subset the project uses,
// with the same spelling where it exists (value(), error(), has_value()) so that a later move
// to std::expected is a rename.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace enclave {

template <class E>
struct Unexpected {
  E error;
};

template <class E>
Unexpected<std::decay_t<E>> fail(E&& e) {
  return {std::forward<E>(e)};
}

template <class T, class E>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  template <class G>
  Result(Unexpected<G> u) : v_(std::in_place_index<1>, E(std::move(u.error))) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  const E& error() const {
    assert(!has_value());
    return std::get<1>(v_);
  }
  E& error() {
    assert(!has_value());
    return std::get<1>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  template <class G>
  Result(Unexpected<G> u) : err_(E(std::move(u.error))), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { assert(ok_); }
  const E& error() const {
    assert(!ok_);
    return err_;
  }

 private:
  E err_{};
  bool ok_ = true;
};

// The error type of the driver layers (I/O, storage, configuration). Parsers of untrusted
// bytes use their own typed errors and convert at the boundary.
enum class Errc {
  kInvalidArgument,  // caller's input is wrong
  kNotFound,
  kAlreadyExists,
  kCorrupt,  // stored data fails its own checks
  kIo,
  kNoSpace,  // disk full: nothing was written
  kPermission,
  kUnavailable,  // peer down, try later
  kTimeout,
  kConflict,  // e.g. schema newer than this build
  kInternal,
};

const char* errc_name(Errc c);
// Stable snake_case identifiers for the wire protocol ("no_space"); errc_from_id inverts it.
const char* errc_id(Errc c);
std::optional<Errc> errc_from_id(std::string_view id);

struct Error {
  Errc code = Errc::kInternal;
  std::string message;

  // "code: message", for logs and CLI output.
  std::string describe() const { return std::string(errc_name(code)) + ": " + message; }
};

inline Unexpected<Error> fail(Errc code, std::string message) {
  return {Error{code, std::move(message)}};
}

template <class T>
using Expected = Result<T, Error>;

// Passes on the error of a failed Result: `if (!rows) return error_of(rows);`.
template <class R>
auto error_of(const R& failed) {
  return Unexpected<std::decay_t<decltype(failed.error())>>{failed.error()};
}
using Status = Result<void, Error>;

}  // namespace enclave

// Propagates the error of an Expected/Status expression out of the calling function.
#define ENCLAVE_TRY(expr)                                                                     \
  do {                                                                                        \
    auto enclave_try_result_ = (expr);                                                        \
    if (!enclave_try_result_)                                                                 \
      return ::enclave::Unexpected<::enclave::Error>{std::move(enclave_try_result_).error()}; \
  } while (0)
