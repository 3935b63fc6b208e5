// Internal to exitcontrol/lp: safe use of GLPK from C++.
//
// GLPK reports bad input (an index out of range, inconsistent bounds) by printing a message
// and calling abort(). The callers validate their input first, so that should never happen;
// as a second line of defence every GLPK call runs under guarded(): an error hook longjmps
// back, the GLPK environment of the thread is freed (GLPK's documented way to recover) and
// the caller gets a kInternal error instead of a dead process. GLPK also prints to stdout
// by default; guarded() silences it, error messages included.
#pragma once

#include <glpk.h>

#include <csetjmp>
#include <cstdint>
#include <string>
#include <utility>

#include "common/result.hpp"

namespace enclave::exitcontrol::lp::glpk {

struct ThreadState {
  std::jmp_buf jump;
  // Bumped each time the environment is freed after an error: every problem object created
  // before is gone and must not be deleted again.
  std::uint64_t generation = 0;
};
inline thread_local ThreadState thread_state;

extern "C" inline void on_glpk_error(void*) {
  std::longjmp(thread_state.jump, 1);
}

// Swallows all of GLPK's terminal output (its error messages ignore glp_term_out).
extern "C" inline int silence_glpk(void*, const char*) {
  return 1;
}

// Runs body, which must only call GLPK functions on plain values (no C++ objects with
// destructors are created inside it: a longjmp would skip them). Returns false when GLPK
// raised an error; the environment has then been reset.
template <class Body>
bool guarded(Body&& body) {
  glp_term_out(GLP_OFF);
  glp_term_hook(&silence_glpk, nullptr);
  glp_error_hook(&on_glpk_error, nullptr);
  if (setjmp(thread_state.jump) != 0) {
    glp_free_env();
    ++thread_state.generation;
    return false;
  }
  body();
  glp_error_hook(nullptr, nullptr);
  return true;
}

// glp_simplex, started once more from a fresh basis when the current one is numerically
// troubled. For use inside guarded().
inline int simplex_with_restart(glp_prob* p, const glp_smcp* parm) {
  int ret = glp_simplex(p, parm);
  if (ret == GLP_EFAIL || ret == GLP_ESING || ret == GLP_ECOND || ret == GLP_EBADB) {
    glp_adv_basis(p, 0);
    ret = glp_simplex(p, parm);
  }
  return ret;
}

inline Unexpected<Error> glpk_failure(const char* what) {
  return fail(Errc::kInternal, std::string("GLPK rejected the ") + what +
                                   " (an internal error: the input was validated first)");
}

// Owns a glp_prob for the lifetime of one computation.
class Problem {
 public:
  Problem() {
    if (!guarded([&] { prob_ = glp_create_prob(); })) prob_ = nullptr;
    generation_ = thread_state.generation;
  }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;
  Problem(Problem&& other) noexcept
      : prob_(std::exchange(other.prob_, nullptr)), generation_(other.generation_) {}
  Problem& operator=(Problem&& other) noexcept {
    if (this != &other) {
      release();
      prob_ = std::exchange(other.prob_, nullptr);
      generation_ = other.generation_;
    }
    return *this;
  }
  ~Problem() { release(); }

  // Null when GLPK failed; also null after an error reset the environment.
  glp_prob* get() const { return alive() ? prob_ : nullptr; }
  bool alive() const { return prob_ != nullptr && generation_ == thread_state.generation; }

 private:
  void release() {
    if (alive()) {
      glp_prob* p = prob_;
      guarded([&] { glp_delete_prob(p); });
    }
    prob_ = nullptr;
  }
  glp_prob* prob_ = nullptr;
  std::uint64_t generation_ = 0;
};

}  // namespace enclave::exitcontrol::lp::glpk
