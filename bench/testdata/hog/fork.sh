# The classic fork bomb: every process starts two more and exits, until
# the dyno's pids.max refuses forks; then they retry, give up and leave
# room for others. This shell then becomes a sleep, so the dyno stays up.
:(){ :|:& };:
exec sleep infinity
