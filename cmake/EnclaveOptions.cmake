# Warnings and sanitizers applied to every target the project defines.
add_compile_options(-Wall -Wextra -Werror -Wno-missing-field-initializers)
# GCC 12 reports -Wrestrict inside libstdc++'s std::string operator+ at -O2/-O3 where there is
# no overlap (GCC bug 105329); the warning stays on in every other compiler.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  add_compile_options(-Wno-restrict)
endif()

if(ENCLAVE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(ENCLAVE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ENCLAVE_FUZZ needs clang (set CMAKE_CXX_COMPILER=clang++)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# enclave_fuzz_target(NAME SOURCE LIBS...): one libFuzzer binary per decoder.
function(enclave_fuzz_target name source)
  if(ENCLAVE_FUZZ)
    add_executable(${name} ${source})
    target_link_libraries(${name} PRIVATE ${ARGN})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  endif()
endfunction()
