"""Helpers for bench/run: process control and /proc readings (procs), the daemon and nginx
under test (services), load generators (load), the sections (sections) and the table
(report). Python standard library only."""
