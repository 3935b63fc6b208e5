// What the load tools share: the CPU of the processes they measure (/proc), and reading back
// the result files bench.sh keeps.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace enclave::bench {

struct CpuTimes {
  double user = 0, system = 0;  // seconds
  double total() const { return user + system; }
};

// utime and stime of a whole process, its exited threads included (/proc/PID/stat). The
// kernel reports them in clock ticks (10 ms here): measure enough work to make that small.
inline CpuTimes cpu_times(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) {
    throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
  }
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string s; rest >> s;) fields.push_back(s);
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {std::stod(fields.at(11)) / ticks, std::stod(fields.at(12)) / ticks};
}

// A result file a load tool wrote into dir (bench.sh keeps them); nullopt when it is missing or
// not JSON (that scenario was not run).
inline std::optional<nlohmann::json> load_result(const std::filesystem::path& dir,
                                                 const char* name) {
  std::ifstream f(dir / name);
  if (!f) return std::nullopt;
  auto j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace enclave::bench
