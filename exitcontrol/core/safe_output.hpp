// The safe version of a table, written in the layout of its input: the original CSV with the
// value field of every suppressed cell replaced by the marker and, optionally, new values for
// some cells (recomputed totals, rounding). Every other byte stays as it was: the byte-order
// mark, line ends, quoting of untouched fields, trailing empty lines. Only a rewritten field
// is quoted afresh, and only when RFC 4180 needs it.
//
// A suppressed cell in the long form also loses its statistics columns (contributors, top1,
// top2, institutions, insurers are written empty): they would reveal what the marker hides.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "exitcontrol/core/load.hpp"

namespace enclave::exitcontrol {

// suppressed: one flag per cell of loaded.table (non-zero = suppressed). replacement_values:
// empty, or one per cell where kMissing keeps the published value and a number replaces it
// (written as an integer when it is one, else in the shortest form that reads back the same).
// kInvalidArgument if a span has the wrong length or a suppressed cell has a replacement.
Expected<std::string> write_safe(const LoadedTable& loaded,
                                 std::span<const std::uint8_t> suppressed, std::string_view marker,
                                 std::span<const double> replacement_values = {});

// A number as write_safe writes it: "12", "-3", "0.25", "1e+21".
std::string format_value(double value);

}  // namespace enclave::exitcontrol
