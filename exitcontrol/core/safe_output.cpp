#include "exitcontrol/core/safe_output.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

namespace enclave::exitcontrol {

std::string format_value(double value) {
  char buf[64];
  std::to_chars_result r;
  // Integers up to 2^53 print exactly without a fraction; beyond, the shortest form.
  if (std::nearbyint(value) == value && std::fabs(value) < 9007199254740992.0) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, value);
  }
  return std::string(buf, r.ptr);
}

namespace {

struct Edit {
  std::uint32_t record;  // 0-based
  std::uint32_t column;  // 0-based
  std::string text;
};

}  // namespace

Expected<std::string> write_safe(const LoadedTable& loaded,
                                 std::span<const std::uint8_t> suppressed, std::string_view marker,
                                 std::span<const double> replacement_values) {
  const Table& table = loaded.table;
  if (suppressed.size() != table.size()) {
    return fail(Errc::kInvalidArgument, loaded.name + ": " + std::to_string(suppressed.size()) +
                                            " suppression flags for " +
                                            std::to_string(table.size()) + " cells");
  }
  if (!replacement_values.empty() && replacement_values.size() != table.size()) {
    return fail(Errc::kInvalidArgument,
                loaded.name + ": " + std::to_string(replacement_values.size()) +
                    " replacement values for " + std::to_string(table.size()) + " cells");
  }
  const auto& cols = loaded.columns;
  std::vector<Edit> edits;
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    const bool replaced = !replacement_values.empty() && !is_missing(replacement_values[cell]);
    if (!suppressed[cell] && !replaced) continue;
    const std::uint32_t record = table.origin[cell].row - 1;
    const std::uint32_t column = table.origin[cell].column - 1;
    if (!suppressed[cell]) {
      edits.push_back({record, column, format_value(replacement_values[cell])});
      continue;
    }
    if (replaced) {
      return fail(Errc::kInvalidArgument, loaded.name + ": cell " + table.label(cell) +
                                              " is suppressed and has a replacement value");
    }
    edits.push_back({record, column, std::string(marker)});
    for (const auto& stat :
         {cols.contributors, cols.top1, cols.top2, cols.institutions, cols.insurers}) {
      if (stat && *stat != column) {
        edits.push_back({record, static_cast<std::uint32_t>(*stat), std::string()});
      }
    }
  }
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) {
    return a.record != b.record ? a.record < b.record : a.column < b.column;
  });

  const std::string& bytes = *loaded.bytes;
  const csv::Document& doc = loaded.document;
  std::string out;
  out.reserve(bytes.size() + edits.size() * 2);
  const std::size_t first = static_cast<std::size_t>(doc.raw_record(0).data() - bytes.data());
  out.append(bytes, 0, first);  // the byte-order mark, if any
  auto edit = edits.begin();
  for (std::size_t r = 0; r < doc.records(); ++r) {
    std::string_view raw = doc.raw_record(r);
    if (edit == edits.end() || edit->record != r) {
      out += raw;
      continue;
    }
    csv::RawRecord fields = csv::split_raw(raw);
    for (std::size_t c = 0; c < fields.fields.size(); ++c) {
      if (c > 0) out += ',';
      if (edit != edits.end() && edit->record == r && edit->column == c) {
        csv::append_field(out, edit->text);
        while (edit != edits.end() && edit->record == r && edit->column == c) ++edit;
      } else {
        out += fields.fields[c];
      }
    }
    out += fields.line_end;
  }
  std::string_view last = doc.raw_record(doc.records() - 1);
  const std::size_t end = static_cast<std::size_t>(last.data() + last.size() - bytes.data());
  out.append(bytes, end);  // trailing line ends
  return out;
}

}  // namespace enclave::exitcontrol
