// Open-addressing hash indexes for the row-level passes (k-anonymity, tabulation). A million
// rows must group in well under a second, so keys are views or integers, slots are flat
// arrays probed linearly, and nothing is allocated per row. Both indexes hand out dense ids
// in insertion order, so callers keep their per-key data in plain vectors indexed by id.
// Internal to exitcontrol/core.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace enclave::exitcontrol::detail {

inline constexpr std::uint32_t kNone = 0xffffffffu;  // no id

// "name" with quotes, for messages that name a column or a value.
inline std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

// splitmix64's finaliser: every input bit reaches every output bit.
inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

inline std::uint64_t hash_bytes(std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ word) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  if (n > 0) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, n);
    h = (h ^ word) * 0xff51afd7ed558ccdull;
  }
  return mix64(h);
}

inline std::size_t capacity_for(std::size_t expected) {
  std::size_t capacity = 16;
  while (capacity < expected * 2) capacity *= 2;
  return capacity;
}

// A string of at most 8 bytes packed into a word: together with the length it identifies the
// string exactly (overlapping fixed-size loads, no byte-by-byte copy). Longer strings give
// their first 8 bytes.
inline std::uint64_t short_word(std::string_view s) {
  const char* p = s.data();
  const std::size_t n = s.size();
  if (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    return word;
  }
  if (n >= 4) {
    std::uint32_t low, high;
    std::memcpy(&low, p, 4);
    std::memcpy(&high, p + n - 4, 4);
    return (std::uint64_t{high} << 32) | low;
  }
  if (n > 0) {
    return std::uint64_t{static_cast<std::uint8_t>(p[0])} |
           std::uint64_t{static_cast<std::uint8_t>(p[n / 2])} << 8 |
           std::uint64_t{static_cast<std::uint8_t>(p[n - 1])} << 16;
  }
  return 0;
}

// Distinct strings -> 0, 1, 2, ... The views must outlive the index (they point into a parsed
// csv::Document and its bytes). Categorical values are mostly short, so a slot keeps the
// packed word and the length and compares a string of up to 8 bytes without reading it.
class StringIndex {
 public:
  explicit StringIndex(std::size_t expected = 16) : slots_(capacity_for(expected)) {}

  std::uint32_t intern(std::string_view s) {
    const std::uint64_t word = short_word(s);
    const auto size = static_cast<std::uint32_t>(s.size());
    const std::uint64_t h = hash_of(s, word);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id == kEmpty) {
        const auto id = static_cast<std::uint32_t>(values_.size());
        slot = {word, size, id};
        values_.push_back(s);
        if (values_.size() * 2 > slots_.size()) grow();
        return id;
      }
      if (slot.word == word && slot.size == size && (size <= 8 || values_[slot.id] == s))
        return slot.id;
    }
  }

  std::size_t size() const { return values_.size(); }
  std::string_view value(std::uint32_t id) const { return values_[id]; }
  const std::vector<std::string_view>& values() const { return values_; }

 private:
  static constexpr std::uint32_t kEmpty = 0xffffffffu;
  struct Slot {
    std::uint64_t word = 0;
    std::uint32_t size = 0;
    std::uint32_t id = kEmpty;
  };

  static std::uint64_t hash_of(std::string_view s, std::uint64_t word) {
    return s.size() <= 8 ? mix64(word ^ (std::uint64_t{s.size()} << 59)) : hash_bytes(s);
  }

  void grow() {
    slots_.assign(slots_.size() * 2, Slot{});
    const std::size_t mask = slots_.size() - 1;
    for (std::uint32_t id = 0; id < values_.size(); ++id) {
      const std::string_view s = values_[id];
      const std::uint64_t word = short_word(s);
      std::size_t i = hash_of(s, word) & mask;
      while (slots_[i].id != kEmpty) i = (i + 1) & mask;
      slots_[i] = {word, static_cast<std::uint32_t>(s.size()), id};
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::string_view> values_;
};

// Distinct 64-bit keys (typically two 32-bit ids packed: a cell and a unit, a class and a
// value) -> 0, 1, 2, ...
class PairIndex {
 public:
  explicit PairIndex(std::size_t expected = 16) : slots_(capacity_for(expected)) {}

  static std::uint64_t pack(std::uint32_t high, std::uint32_t low) {
    return (std::uint64_t{high} << 32) | low;
  }

  // {id, true} when key is new.
  std::pair<std::uint32_t, bool> insert(std::uint64_t key) {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id == kEmpty) {
        const auto id = static_cast<std::uint32_t>(keys_.size());
        assert(id != kEmpty);
        slot = {key, id};
        keys_.push_back(key);
        if (keys_.size() * 2 > slots_.size()) grow();
        return {id, true};
      }
      if (slot.key == key) return {slot.id, false};
    }
  }

  std::size_t size() const { return keys_.size(); }
  std::uint64_t key(std::uint32_t id) const { return keys_[id]; }

 private:
  static constexpr std::uint32_t kEmpty = 0xffffffffu;
  struct Slot {
    std::uint64_t key = 0;
    std::uint32_t id = kEmpty;
  };

  void grow() {
    slots_.assign(slots_.size() * 2, Slot{});
    const std::size_t mask = slots_.size() - 1;
    for (std::uint32_t id = 0; id < keys_.size(); ++id) {
      std::size_t i = mix64(keys_[id]) & mask;
      while (slots_[i].id != kEmpty) i = (i + 1) & mask;
      slots_[i] = {keys_[id], id};
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::uint64_t> keys_;
};

}  // namespace enclave::exitcontrol::detail
