// Replay driver for fuzz targets in the normal (gcc, sanitizer) test build: runs every file of
// a corpus directory, then N seeded mutations of them (byte flips, truncation, duplication,
// insertion), so each decoder sees malformed input in every CI run without libFuzzer.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
    return 2;
  }
  std::vector<std::vector<std::uint8_t>> corpus;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1], ec)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (ec || corpus.empty()) {
    std::fprintf(stderr, "no corpus at %s\n", argv[1]);
    return 1;
  }
  for (const auto& input : corpus) LLVMFuzzerTestOneInput(input.data(), input.size());

  long mutations = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 10000;
  std::mt19937_64 rng(0x5eed);
  for (long i = 0; i < mutations; ++i) {
    auto input = corpus[rng() % corpus.size()];
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 5) {
        case 0:  // flip a bit
          if (!input.empty()) input[rng() % input.size()] ^= std::uint8_t(1u << (rng() % 8));
          break;
        case 1:  // truncate
          if (!input.empty()) input.resize(rng() % input.size());
          break;
        case 2:  // insert a random byte
          input.insert(input.begin() + static_cast<long>(rng() % (input.size() + 1)),
                       static_cast<std::uint8_t>(rng()));
          break;
        case 3:  // overwrite with an interesting value
          if (!input.empty()) {
            static constexpr std::uint8_t kInteresting[] = {0,    0xff, 0x7f, 0x80,
                                                            '\n', ' ',  '=',  '"'};
            input[rng() % input.size()] = kInteresting[rng() % sizeof kInteresting];
          }
          break;
        case 4:  // duplicate a slice
          if (!input.empty()) {
            std::size_t a = rng() % input.size();
            std::size_t len = 1 + rng() % (input.size() - a);
            std::vector<std::uint8_t> slice(input.begin() + static_cast<long>(a),
                                            input.begin() + static_cast<long>(a + len));
            input.insert(input.begin() + static_cast<long>(a), slice.begin(), slice.end());
          }
          break;
      }
    }
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::printf("replayed %zu corpus files and %ld mutations\n", corpus.size(), mutations);
  return 0;
}
