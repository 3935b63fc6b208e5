#include "exitcontrol/cli/export_view.hpp"

#include <array>
#include <charconv>

#include "common/bytes.hpp"
#include "common/cli.hpp"

namespace enclave::exitcontrol::exportview {

namespace {

using cli::field;
using nlohmann::json;

constexpr std::size_t kLabelWidth = 15;

std::int64_t integer(const json& object, const char* key, std::int64_t fallback) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : fallback;
}

}  // namespace

void print_line(std::ostream& out, std::string_view label, std::string_view value) {
  std::string text = "  " + std::string(label);
  text.resize(2 + kLabelWidth, ' ');
  for (char c : value) {
    text += c;
    if (c == '\n') text.append(2 + kLabelWidth, ' ');
  }
  out << text << '\n';
}

void print_next_page(std::ostream& out, const json& answer) {
  if (!answer.contains("next")) return;
  const std::size_t shown = answer.value("requests", json::array()).size();
  out << shown << " of " << answer.value("total", shown) << " requests; the next page: --after "
      << field(answer, "next") << "\n";
}

std::string cut(std::string_view text, std::size_t width) {
  std::string flat(text);
  for (char& c : flat) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (cli::display_width(flat) <= width) return flat;
  // Whole code points only, leaving one column for the mark.
  std::string out;
  for (std::size_t at = 0; at < flat.size();) {
    const std::size_t start = at;
    if (!utf8_next(flat, at)) at = start + 1;
    std::string_view piece(flat.data() + start, at - start);
    if (cli::display_width(out) + cli::display_width(piece) + 1 > width) break;
    out += piece;
  }
  return out + "…";
}

std::string engine_summary(const json& object) {
  std::string text = field(object, "summary");
  while (!text.empty() && (text.back() == ' ' || text.back() == ';')) text.pop_back();
  return text;
}

std::string short_sha256(const json& object, const char* key) {
  std::string hash = field(object, key);
  return hash == "-" ? hash : hash.substr(0, 12);
}

std::string size_text(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_unsigned()) return field(object, key) + " bytes";
  return cli::with_commas(it->get<std::uint64_t>()) + " bytes";
}

std::string_view state_meaning(std::string_view state) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kMeanings = {{
      {"checking", "the engine is checking the files"},
      {"needs_analyst",
       "a file did not pass: the analyst accepts its safe version, asks for an exception or "
       "withdraws it"},
      {"waiting_review", "waiting for a data steward's review"},
      {"approved", "every file is decided; the release is being built"},
      {"rejected", "no file was approved: nothing leaves"},
      {"released", "the approved files are sealed and wait for the organisation's download"},
      {"withdrawn", "the analyst withdrew it: nothing leaves"},
      {"failed", "it could not be completed (see the reason): nothing leaves"},
  }};
  for (const auto& [name, meaning] : kMeanings) {
    if (name == state) return meaning;
  }
  return "unknown state";
}

bool is_closed(std::string_view state) {
  return state == "rejected" || state == "released" || state == "withdrawn" || state == "failed";
}

std::optional<std::uint32_t> parse_file_number(std::string_view file) {
  std::uint32_t number = 0;
  const auto [end, ec] = std::from_chars(file.data(), file.data() + file.size(), number);
  if (file.empty() || ec != std::errc() || end != file.data() + file.size()) return std::nullopt;
  return number;
}

Expected<std::uint32_t> file_number(const json& request, std::string_view file) {
  const json files = request.value("files", json::array());
  const auto number = parse_file_number(file);
  std::string names;
  for (const auto& f : files) {
    const auto index = integer(f, "file", -1);
    if (number ? index == static_cast<std::int64_t>(*number) : field(f, "name") == file) {
      return static_cast<std::uint32_t>(index);
    }
    names += (names.empty() ? "" : ", ") + std::to_string(index) + " " + field(f, "name");
  }
  return fail(Errc::kNotFound, field(request, "request") + " has no file \"" + std::string(file) +
                                   "\" (its files: " + (names.empty() ? "none" : names) + ")");
}

void print_request_header(std::ostream& out, const json& request) {
  const std::string state = field(request, "state");
  out << field(request, "request") << "  " << state << ": " << state_meaning(state) << "\n";
  if (request.contains("reason") && field(request, "reason") != "-") {
    print_line(out, "reason", field(request, "reason"));
  }
  print_line(out, "project",
             field(request, "project") + " (compartment " + field(request, "compartment") +
                 ", tier " + field(request, "tier") + ", profile " + field(request, "profile") +
                 ")");
  print_line(out, "requester",
             field(request, "requester") + " (session " + field(request, "session") + ")");
  const auto stewards = integer(request, "stewards_required", 1);
  print_line(out, "stewards",
             std::to_string(stewards) +
                 (stewards == 1 ? " approval" : " approvals, by different stewards,") +
                 " per file");
  print_line(out, "justification", field(request, "justification"));
  print_line(out, "created",
             field(request, "created_at") + " (updated " + field(request, "updated_at") + ")");
  if (request.contains("release")) print_line(out, "release", field(request, "release"));
}

void print_file_header(std::ostream& out, const json& request, const json& file) {
  out << "file " << field(file, "file") << "  " << field(file, "name") << "  ("
      << field(file, "type") << ", " << size_text(file, "size") << ", sha256 "
      << short_sha256(file, "sha256") << ")\n";
  const std::string outcome = file.contains("outcome") ? field(file, "outcome") : "checking";
  print_line(
      out, "status",
      field(file, "status") + " (engine: " + outcome + "; choice: " + field(file, "choice") + ")");
  if (auto safe = file.find("safe_version"); safe != file.end() && safe->is_object()) {
    print_line(out, "safe version",
               field(*safe, "outcome") + ", " + size_text(*safe, "size") + ", sha256 " +
                   short_sha256(*safe, "sha256"));
  }
  if (file.contains("exception_reason"))
    print_line(out, "exception", field(file, "exception_reason"));
  print_line(out, "approvals",
             std::to_string(integer(file, "approvals", 0)) + " of " +
                 std::to_string(integer(request, "stewards_required", 1)));
  for (const auto& d : file.value("decisions", json::array())) {
    std::string text = field(d, "steward") + " " + field(d, "decision") + " at " + field(d, "at");
    if (field(d, "comment") != "-") text += ": " + field(d, "comment");
    print_line(out, "decision", text);
  }
}

}  // namespace enclave::exitcontrol::exportview
