// Lists the API's operations from /api/v1/openapi.json: no viewer from a CDN, nothing to install.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function typeOf(schema, doc) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map((s) => typeOf(s, doc)).join(" | ");
  if (schema.type === "array") return typeOf(schema.items, doc) + "[]";
  return Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "object";
}

function describeSchema(name, schema, doc) {
  const box = el("details");
  box.appendChild(el("summary", name));
  const list = el("ul");
  for (const [field, prop] of Object.entries(schema.properties || {})) {
    const required = (schema.required || []).includes(field) ? " (required)" : "";
    list.appendChild(el("li", `${field}: ${typeOf(prop, doc)}${required}${prop.description ? " — " + prop.description : ""}`));
  }
  box.appendChild(list);
  return box;
}

async function main() {
  const target = document.getElementById("operations");
  let doc;
  try {
    const response = await fetch("/api/v1/openapi.json");
    doc = await response.json();
  } catch (error) {
    target.textContent = "The API description could not be loaded: " + error;
    return;
  }
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  document.getElementById("description").textContent = doc.info.description || "";
  target.textContent = "";
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const section = el("section", undefined, "operation");
      const head = el("h2");
      head.appendChild(el("span", method.toUpperCase(), "method " + method));
      head.appendChild(el("code", " " + path));
      section.appendChild(head);
      if (op.summary) section.appendChild(el("p", op.summary));
      const params = op.parameters || [];
      if (params.length) {
        const list = el("ul");
        for (const p of params) {
          list.appendChild(el("li", `${p.name} (${p.in}${p.required ? ", required" : ""}): ${typeOf(p.schema, doc)}${p.description ? " — " + p.description : ""}`));
        }
        section.appendChild(el("h3", "Parameters"));
        section.appendChild(list);
      }
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) section.appendChild(el("p", "Body: " + typeOf(body.schema, doc)));
      const codes = Object.entries(op.responses || {}).map(([code, r]) => {
        const content = r.content && (r.content["application/json"] || r.content["application/problem+json"]);
        return `${code}${content ? " " + typeOf(content.schema, doc) : ""}`;
      });
      section.appendChild(el("p", "Responses: " + codes.join(", ")));
      target.appendChild(section);
    }
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  if (Object.keys(schemas).length) {
    target.appendChild(el("h2", "Shapes"));
    for (const [name, schema] of Object.entries(schemas)) target.appendChild(describeSchema(name, schema, doc));
  }
}

main();
