// The suite drives real processes, mounts and a Docker engine on a 2-core machine: one thing at a time keeps
// failure windows (how fast an error must surface) meaningful.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
