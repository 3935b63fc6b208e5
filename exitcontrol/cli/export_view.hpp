// Export requests as people read them, shared by enclave-export (the analyst, export_client.hpp)
// and enclavectl export (the stewards): enclave-exportd's JSON answers (the request and summary
// shapes of its export.* methods) as aligned text. --json prints the daemon's answer instead.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace enclave::exitcontrol::exportview {

// text cut to at most width display columns, "…" marking the cut; line breaks become spaces.
std::string cut(std::string_view text, std::size_t width);

// Under one page of a longer list of requests (an answer with "next"): how many there are in
// all, and the option that shows the next page. Nothing for a whole list.
void print_next_page(std::ostream& out, const nlohmann::json& answer);

// The engine's one-line summary in object["summary"] ("fail; threshold: 4 cells may need
// suppressing"), without ACRO's trailing separator.
std::string engine_summary(const nlohmann::json& object);

// The first 12 hex digits of the SHA-256 in object[key], enough to tell files apart on screen.
std::string short_sha256(const nlohmann::json& object, const char* key);

// "1,204 bytes".
std::string size_text(const nlohmann::json& object, const char* key);

// What a request state means for the people waiting on it, in a phrase.
std::string_view state_meaning(std::string_view state);

// A request that takes no further action: rejected, released, withdrawn, failed.
bool is_closed(std::string_view state);

// A file's number as a command gives it ("0"); nullopt when FILE is not a number (a name).
std::optional<std::uint32_t> parse_file_number(std::string_view file);

// The file a command names in a request JSON: its number ("0") or its name ("table.csv").
// kNotFound naming the request and the files it has otherwise.
Expected<std::uint32_t> file_number(const nlohmann::json& request, std::string_view file);

// "  label          value": the labelled lines under a request or a file, later lines of a
// value indented under its first.
void print_line(std::ostream& out, std::string_view label, std::string_view value);

// The request's header: id, state and why, project, compartment, requester, stewards required,
// justification, times, release.
void print_request_header(std::ostream& out, const nlohmann::json& request);

// One file's first lines: number, name, type, size and hash; status, engine outcome and the
// analyst's choice; the safe version; the exception's reason; approvals and every decision.
void print_file_header(std::ostream& out, const nlohmann::json& request,
                       const nlohmann::json& file);

}  // namespace enclave::exitcontrol::exportview
