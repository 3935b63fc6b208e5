#include "common/policy.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

namespace enclave::policy {

namespace {

// Policy files are small reviewed text; anything larger is not one of ours.
constexpr std::size_t kMaxPolicyBytes = 16 * 1024 * 1024;

std::string position(const std::string& source, const toml::source_position& at) {
  if (!at) return source;  // toml++ gives every parsed node a position; keep messages sane
  return source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "unknown";
}

std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "?";
  return std::string(buf, end);
}

// Keys that are not bare TOML keys are shown quoted so the dotted path stays unambiguous.
std::string key_segment(std::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (bare) return std::string(key);
  return "\"" + std::string(key) + "\"";
}

std::string join(const std::string& path, std::string_view key) {
  if (path.empty()) return key_segment(key);
  return path + "." + key_segment(key);
}

}  // namespace

bool Table::contains(std::string_view key) const {
  return table_->contains(key);
}

std::vector<std::string> Table::keys() const {
  // toml::table is ordered by name; messages and callers want the order of the file.
  std::vector<std::pair<toml::source_position, std::string>> entries;
  for (const auto& [key, node] : *table_) entries.emplace_back(key.source().begin, key.str());
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    if (a.first.line != b.first.line) return a.first.line < b.first.line;
    return a.first.column < b.first.column;
  });
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (auto& e : entries) out.push_back(std::move(e.second));
  return out;
}

std::string Table::where(std::string_view key) const {
  auto it = table_->find(key);
  const toml::source_position& at =
      it != table_->end() ? it->first.source().begin : table_->source().begin;
  return position(doc_->source(), at) + ": " + join(path_, key);
}

Error Table::error_at(std::string_view key, std::string_view message) const {
  return Error{Errc::kInvalidArgument, where(key) + ": " + std::string(message)};
}

Expected<std::string> Table::string(std::string_view key) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return fail(error_at(key, "missing required string"));
  if (const auto* s = node->as_string()) return s->get();
  return fail(error_at(key, std::string("expected a string, found ") + type_name(*node)));
}

Expected<std::string> Table::string_or(std::string_view key, std::string fallback) const {
  if (!contains(key)) return fallback;
  return string(key);
}

Expected<std::string> Table::nonempty_string_or(std::string_view key, std::string fallback) const {
  auto v = string_or(key, std::move(fallback));
  if (!v) return v;
  if (v->empty()) return fail(error_at(key, "must not be empty"));
  return v;
}

Expected<std::int64_t> Table::integer_or(std::string_view key, std::int64_t fallback,
                                         std::int64_t min, std::int64_t max) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return fallback;
  std::string expected =
      "expected an integer between " + std::to_string(min) + " and " + std::to_string(max);
  const auto* i = node->as_integer();
  if (i == nullptr) return fail(error_at(key, expected + ", found " + type_name(*node)));
  std::int64_t v = i->get();
  if (v < min || v > max) return fail(error_at(key, expected + ", found " + std::to_string(v)));
  return v;
}

Expected<double> Table::number_or(std::string_view key, double fallback, double min,
                                  double max) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return fallback;
  std::string expected =
      "expected a number between " + number_text(min) + " and " + number_text(max);
  double v;
  if (const auto* i = node->as_integer()) {
    v = static_cast<double>(i->get());
  } else if (const auto* f = node->as_floating_point()) {
    v = f->get();
  } else {
    return fail(error_at(key, expected + ", found " + type_name(*node)));
  }
  // Written so that NaN fails too.
  if (!(v >= min && v <= max)) return fail(error_at(key, expected + ", found " + number_text(v)));
  return v;
}

Expected<bool> Table::boolean_or(std::string_view key, bool fallback) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return fallback;
  if (const auto* b = node->as_boolean()) return b->get();
  return fail(error_at(key, std::string("expected a boolean, found ") + type_name(*node)));
}

Expected<std::vector<std::string>> Table::strings_or(std::string_view key,
                                                     std::vector<std::string> fallback) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return fallback;
  const auto* array = node->as_array();
  if (array == nullptr) {
    return fail(
        error_at(key, std::string("expected an array of strings, found ") + type_name(*node)));
  }
  std::vector<std::string> out;
  out.reserve(array->size());
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    if (const auto* s = element.as_string()) {
      out.push_back(s->get());
      continue;
    }
    return fail(
        Error{Errc::kInvalidArgument, position(doc_->source(), element.source().begin) + ": " +
                                          join(path_, key) + "[" + std::to_string(i) +
                                          "]: expected a string, found " + type_name(element)});
  }
  return out;
}

Expected<std::optional<Table>> Table::table(std::string_view key) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return std::optional<Table>();
  const auto* sub = node->as_table();
  if (sub == nullptr) {
    return fail(error_at(key, std::string("expected a table, found ") + type_name(*node)));
  }
  return std::optional<Table>(Table(doc_, sub, join(path_, key)));
}

Expected<std::vector<Table>> Table::tables(std::string_view key) const {
  const toml::node* node = table_->get(key);
  if (node == nullptr) return std::vector<Table>();
  const auto* array = node->as_array();
  if (array == nullptr) {
    return fail(
        error_at(key, std::string("expected an array of tables, found ") + type_name(*node)));
  }
  std::string path = join(path_, key);
  std::vector<Table> out;
  out.reserve(array->size());
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    std::string element_path = path + "[" + std::to_string(i) + "]";
    if (const auto* sub = element.as_table()) {
      out.push_back(Table(doc_, sub, std::move(element_path)));
      continue;
    }
    return fail(Error{Errc::kInvalidArgument,
                      position(doc_->source(), element.source().begin) + ": " + element_path +
                          ": expected a table, found " + type_name(element)});
  }
  return out;
}

Status Table::reject_unknown(std::initializer_list<std::string_view> known) const {
  for (const auto& key : keys()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (std::string_view k : known) {
      if (!list.empty()) list += ", ";
      list += k;
    }
    return fail(error_at(key, "unknown key (known: " + list + ")"));
  }
  return {};
}

Document::Document(std::unique_ptr<toml::table> root, std::string source)
    : root_(std::move(root)), source_(std::move(source)) {}
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Table Document::root() const {
  return Table(this, root_.get(), "");
}

Expected<Document> Document::parse(std::string_view text, std::string source_name) {
  try {
    toml::table root = toml::parse(text, std::string_view(source_name));
    return Document(std::make_unique<toml::table>(std::move(root)), std::move(source_name));
  } catch (const toml::parse_error& e) {
    return fail(Errc::kInvalidArgument,
                position(source_name, e.source().begin) + ": " + std::string(e.description()));
  }
}

Expected<Document> Document::load_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(name.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    int err = errno;
    if (err == ENOENT) return fail(Errc::kNotFound, name + ": no such file");
    if (err == EACCES) return fail(Errc::kPermission, name + ": permission denied");
    return fail(Errc::kIo, name + ": " + std::strerror(err));
  }
  std::string text;
  char buf[16384];
  while (true) {
    std::size_t n = std::fread(buf, 1, sizeof buf, file.get());
    if (n == 0) break;
    if (text.size() + n > kMaxPolicyBytes) {
      return fail(
          Errc::kInvalidArgument,
          name + ": larger than " + std::to_string(kMaxPolicyBytes) + " bytes; not a policy file");
    }
    text.append(buf, n);
  }
  if (std::ferror(file.get())) return fail(Errc::kIo, name + ": " + std::strerror(errno));
  return parse(text, name);
}

}  // namespace enclave::policy
