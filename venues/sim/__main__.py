"""``python -m venues.sim --name sim-a --port 8101`` starts a simulated exchange."""

from venues.sim.server import main

if __name__ == "__main__":
    main()
