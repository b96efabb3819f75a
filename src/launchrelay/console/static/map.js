// A notification's map: the GeoJSON the server worked out (console/mapdata.py) drawn with d3-geo over Natural
// Earth's land (world-atlas), all served by the console itself. Azimuthal equidistant, centred on the launch
// area: distances and bearings from the launch are true, and nothing breaks at the antimeridian or a pole.
// Every element is made with DOM calls and every text set as text: nothing a party wrote becomes markup.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const svg = document.getElementById("map");
  const source = document.getElementById("map-data");
  if (!svg || !source || !window.d3 || !d3.geoAzimuthalEquidistant) return;
  const doc = JSON.parse(source.textContent);
  if (!doc.centre || !doc.features.length) return;
  const width = 720, height = 480, margin = 28;

  // d3-geo reads a ring's winding: a polygon is the smaller side of its ring. A ring written the other way
  // round would cover the rest of the world, so each is turned to enclose less than a hemisphere.
  for (const f of doc.features) {
    if (f.geometry.type === "Polygon" && d3.geoArea(f) > 2 * Math.PI) {
      f.geometry.coordinates = f.geometry.coordinates.map((ring) => ring.slice().reverse());
    }
  }
  const projection = d3.geoAzimuthalEquidistant()
    .rotate([-doc.centre[0], -doc.centre[1]])
    .clipAngle(170)
    .precision(0.2);
  // fit what is drawn, but never closer than about 150 km around the launch
  const around = d3.geoCircle().center(doc.centre).radius(1.35)();
  const drawn = doc.features.filter((f) => f.properties.role !== "boundary");
  projection.fitExtent([[margin, margin], [width - margin, height - margin]],
    { type: "FeatureCollection", features: [...drawn, { type: "Feature", geometry: around }] });
  const path = d3.geoPath(projection);

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    (parent || svg).appendChild(node);
    return node;
  }
  function label(text, at, parent) {
    if (!at || !isFinite(at[0]) || !isFinite(at[1])) return;
    const t = el("text", { x: at[0].toFixed(1), y: at[1].toFixed(1), "text-anchor": "middle" }, parent);
    t.textContent = text;
  }

  el("path", { class: "sphere", d: path({ type: "Sphere" }) });
  const landLayer = el("g", { class: "land-layer" });
  el("path", { class: "graticule", d: path(d3.geoGraticule10()) });
  const overlay = el("g", { class: "overlay" });
  const order = ["direction", "boundary", "trajectory", "launch", "impact", "distance"];
  for (const role of order) {
    for (const f of doc.features.filter((x) => x.properties.role === role)) {
      const d = path(f);
      if (!d) continue;
      const cls = role + (f.properties.short ? " short" : "");
      el("path", { class: cls, d: d, "data-role": role, "data-label": f.properties.label }, overlay);
      if (role === "launch" || role === "impact") {  // below the area, clear of the lines that start in it
        const [[x0], [x1, y1]] = path.bounds(f);
        label(f.properties.label, [(x0 + x1) / 2, y1 + 14], overlay);
      } else if (role === "distance") {  // above the middle of the line
        const [a, b] = f.geometry.coordinates;
        const mid = projection(d3.geoInterpolate(a, b)(0.5));
        label(f.properties.label, mid && [mid[0], mid[1] - 6], overlay);
      }
    }
  }
  svg.dataset.scale = String(projection.scale());
  svg.dataset.translate = projection.translate().join(",");
  svg.dataset.drawn = "overlay";

  fetch("/static/vendor/land-50m.json")
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
    .then((topo) => {
      el("path", { class: "land", d: path(topojson.feature(topo, topo.objects.land)) }, landLayer);
      svg.dataset.drawn = "land";
    })
    .catch(() => { svg.dataset.drawn = "no-land"; });
})();
