"""Monitoring: drift of the inputs and predictions, performance estimated before labels and measured after, the reserve backtest."""
