// Tests share libtorch's global state (seed, thread pool); run them one at a time.
[assembly: DoNotParallelize]
