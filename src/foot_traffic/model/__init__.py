"""The pure model: slot grid, weights, calendar, stores, daily plan and arrival sampling. No I/O."""
