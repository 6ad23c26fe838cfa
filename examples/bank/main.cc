// The bank example function. Usage: bank-function [--listen ADDRESS] [--handler-threads N]
// Transfers wait for the accounts' replies in their handler, so without --handler-threads (or
// $MASSA_FUNCTION_HANDLER_THREADS) the function runs 8 handler threads.
#include <cstdlib>

#include "bank.h"
#include "massa/sdk/function.h"

int main(int argc, char** argv) {
  if (std::getenv("MASSA_FUNCTION_HANDLER_THREADS") == nullptr) {
    setenv("MASSA_FUNCTION_HANDLER_THREADS", "8", /*overwrite=*/0);
  }
  massa::sdk::Function function("bank", "0.1.0");
  example::bank::RegisterBank(function);
  return function.Run(argc, argv);
}
