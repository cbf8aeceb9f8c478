"""Reports: what leaves the warehouse as a document (the assessment workbook of ``etl assess``).

May import: ``etl.scoring``, ``etl.rules.keys``, ``etl.warehouse``, ``etl.errors`` and itself.
"""
