"""Apply: execute exactly a reviewed plan, safely, concurrently and resumably."""
