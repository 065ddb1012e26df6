"""Administrative divisions (行政区划, GB/T 2260): the hierarchy of provinces, prefectures and counties the
platform keeps, loaded from the file shipped beside this module (`gb2260.csv`) and replaced by the platform
administrator (CSV). A code says its own place: digits 1-2 the province, 3-4 the prefecture, 5-6 the county.
"""
